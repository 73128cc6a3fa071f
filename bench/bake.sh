#!/usr/bin/env bash
# Benchmark: `kiln bake --print` on (a) the quickstart project and (b) a generated 500-target
# matrix file with inherits and user functions. Prints median wall time over N runs and peak
# RSS (GNU time), as a markdown table. No peer runs here: `docker buildx` is not packaged in
# Debian 12, so there is no buildx on these machines to compare against.
#
# usage: bench/bake.sh [KILN_BINARY] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kiln=${1:-$here/target/release/kiln}
runs=${2:-21}
[ -x "$kiln" ] || { echo "build kiln first: cargo build --release" >&2; exit 2; }
[ -x /usr/bin/time ] || { apt-get install -y -qq time >/dev/null 2>&1 || true; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# (b) 500 targets: a 20 x 25 matrix of targets inheriting a common base, named by a function.
python3 - "$work/matrix.hcl" <<'PY'
import sys
lines = [
    'variable "REGISTRY" { default = "registry.example.com" }',
    'variable "VERSION" { default = "1.0.0" }',
    'function "ref" {',
    '  params = [name, variant]',
    '  result = "${REGISTRY}/${name}:${VERSION}-${variant}"',
    '}',
    'target "_base" {',
    '  args = { VERSION = VERSION }',
    '  labels = { "org.opencontainers.image.version" = VERSION }',
    '  platforms = ["linux/amd64", "linux/arm64"]',
    '}',
    'target "svc" {',
    '  inherits = ["_base"]',
    '  name = "svc-${s}-${v}"',
    '  matrix = {',
    '    s = [%s]' % ", ".join('"s%02d"' % i for i in range(20)),
    '    v = [%s]' % ", ".join('"v%02d"' % i for i in range(25)),
    '  }',
    '  target = v',
    '  tags = [ref(s, v), lower(ref(s, "latest"))]',
    '  args = { SERVICE = upper(s), VARIANT = v }',
    '}',
    'group "default" { targets = ["svc"] }',
]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY

median_ms() { # cmd...
    local t=() s e
    for _ in $(seq "$runs"); do
        s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
        t+=($(( (e - s) / 1000 )))
    done
    printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1000}'
}

peak_rss_mb() { # cmd...
    /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.1f", $1/1024}'
}

cd "$here/examples/quickstart"
a_ms=$(median_ms "$kiln" bake --print)
a_rss=$(peak_rss_mb "$kiln" bake --print)
cd "$work"
n=$("$kiln" bake -f matrix.hcl --print | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["target"]))')
b_ms=$(median_ms "$kiln" bake -f matrix.hcl --print)
b_rss=$(peak_rss_mb "$kiln" bake -f matrix.hcl --print)

echo "| workload | median wall | peak RSS | target |"
echo "|---|---|---|---|"
echo "| (a) quickstart, \`bake --print\` | ${a_ms} ms | ${a_rss} MB | < 5 ms, < 30 MB |"
echo "| (b) ${n} targets (matrix + inherits + functions) | ${b_ms} ms | ${b_rss} MB | < 100 ms, < 30 MB |"
echo
echo "kiln: $("$kiln" --version); runs: $runs; machine: $(nproc) cores, $(uname -m)"
