#!/usr/bin/env bash
# The test command (README "Run the tests"): sets up everything the tests need on a fresh
# Debian 12 machine (packages, registries, binfmt, docker engine, base images), then runs
# the code-health checks and the whole test suite, including the conformance corpora in
# ../shared/conformance.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

step() { printf '\n==> %s\n' "$*"; }

step "test environment (scripts/test-env.sh up)"
bash scripts/test-env.sh up
# shellcheck disable=SC1091
source "${KILN_TESTENV:-/tmp/kiln-testenv}/env.sh"

if ! command -v cargo >/dev/null 2>&1; then
    # shellcheck disable=SC1091
    [ -f "$HOME/.cargo/env" ] && source "$HOME/.cargo/env"
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "cargo test"
cargo test --no-fail-fast 2>&1 | tee "${KILN_TESTENV:-/tmp/kiln-testenv}/cargo-test.log"
