#!/usr/bin/env bash
# The quickstart (README "Try it"): builds kiln and runs its main job on the offline example
# project in examples/quickstart: resolve the bake file, then build every target of the
# default group with the embedded engine (no daemon, no network) into OCI archives.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
if ! command -v cargo >/dev/null 2>&1; then
    # shellcheck disable=SC1091
    [ -f "$HOME/.cargo/env" ] && source "$HOME/.cargo/env"
fi
cargo build --release --quiet
kiln="$here/target/release/kiln"
export KILN_HOME="${KILN_HOME:-$here/target/kiln-home}"
cd examples/quickstart
rm -rf build
echo "\$ kiln bake --list targets"
"$kiln" bake --list targets
echo
echo "\$ kiln bake --print app"
"$kiln" bake --print app
echo
echo "\$ kiln bake --progress=plain"
"$kiln" bake --progress=plain
echo
echo "Built (OCI image archives):"
ls -l build/
