#!/usr/bin/env bash
# The quickstart (README "Try it"): builds kiln and runs its main job on the offline example
# project in examples/quickstart. Today that is resolving the bake file (`kiln bake --print`);
# building images with the embedded engine lands with the engine.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
if ! command -v cargo >/dev/null 2>&1; then
    # shellcheck disable=SC1091
    [ -f "$HOME/.cargo/env" ] && source "$HOME/.cargo/env"
fi
cargo build --release --quiet
kiln="$here/target/release/kiln"
cd examples/quickstart
echo "\$ kiln bake --list targets"
"$kiln" bake --list targets
echo
echo "\$ kiln bake --print app"
"$kiln" bake --print app
