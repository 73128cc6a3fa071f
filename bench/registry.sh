#!/usr/bin/env bash
# Registry transfer benchmark (issue 4): push and pull of
#   (a) "big":   one 1 GiB uncompressed layer (application/vnd.oci.image.layer.v1.tar) of random bytes
#   (b) "small": one gzip layer holding 20,000 small files
# for kiln and skopeo side by side, against a throw-away Debian docker-registry this script starts
# on a free 127.0.0.1 port (and stops, by pid, at the end). Reports median wall time, MB/s
# (image blob bytes / wall) and peak RSS (GNU time %M) over REPS runs.
#
#   push, skopeo: skopeo copy --preserve-digests --dest-tls-verify=false oci:DIR:latest docker://REF
#   push, kiln:   kiln build --platform linux/amd64 -f Dockerfile(FROM base)
#                   --build-context base=oci-layout://DIR:latest --push -t REF CTX
#                 (kiln has no copy/push-a-layout command: the build imports the layers into
#                 $KILN_HOME's store, then pushes). Measured twice: with an empty $KILN_HOME
#                 ("cold store": import + push) and with the store already holding the image
#                 ("warm store": what is left is the push itself).
#   pull, skopeo: skopeo copy --preserve-digests --dest-oci-accept-uncompressed-layers
#                   --src-tls-verify=false docker://REF oci:OUT:latest
#                 (without that flag skopeo gzips the uncompressed 1 GiB layer while writing the
#                 layout, which measures gzip, not the transfer)
#   pull, kiln:   kiln pull --platform linux/amd64 --output OUT REF      (empty $KILN_HOME)
# Before every push the registry storage is wiped, so every blob is really uploaded; every pull
# goes into an empty directory and pulls the same image (pushed once by skopeo, digests kept).
#
# usage: bench/registry.sh [KILN_BINARY]      env: REPS (3), WORK (/tmp/kbench-reg),
#        BIG_MIB (1024) / SMALL_FILES (20000) to shrink the images for a quick try,
#        CASES ("big small"), OUT (bench/results/registry-DATE; .tsv raw rows and .md table)
# Needs root only to apt-get install missing tools (skopeo, docker-registry, time, curl).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kiln=$(realpath "${1:-${KILN:-/work/target-bench/release/kiln}}")
reps=${REPS:-3}
work=${WORK:-/tmp/kbench-reg}
cases=${CASES:-big small}
out=${OUT:-$here/bench/results/registry-$(date -u +%Y-%m-%d)}
[ -x "$kiln" ] || { echo "no kiln binary at $kiln (cargo build --release)" >&2; exit 2; }

need=()
command -v skopeo >/dev/null || need+=(skopeo)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
[ -x /usr/bin/time ] || need+=(time)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then apt-get install -y -qq "${need[@]}" >/dev/null; fi

mkdir -p "$work" "$(dirname "$out")"
log() { echo "$(date -u +%H:%M:%S) $*" >&2; }

# ------------------------------------------------------------------ images (deterministic, cached)
python3 "$here/bench/make_images.py" big "$work/images/big" >&2
python3 "$here/bench/make_images.py" small "$work/images/small" >&2
blob_bytes() { du -sb --apparent-size "$1/blobs" | cut -f1; }   # what a transfer moves

# ------------------------------------------------------------------ throw-away registry
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
regdir=$work/registry
reg_pid=
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $regdir
  delete:
    enabled: true
http:
  addr: $reg
  secret: registry-bench-not-secret
EOF
reg_start() {
  /usr/bin/docker-registry serve "$work/registry.yml" >>"$work/registry.log" 2>&1 &
  reg_pid=$!
  for _ in $(seq 100); do
    curl -fsS "http://$reg/v2/" >/dev/null 2>&1 && return 0
    kill -0 "$reg_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "registry did not start on $reg; see $work/registry.log" >&2; exit 1
}
reg_stop() {
  if [ -n "$reg_pid" ]; then
    kill "$reg_pid" 2>/dev/null || true
    wait "$reg_pid" 2>/dev/null || true
    reg_pid=
  fi
}
reg_reset() { reg_stop; rm -rf "$regdir"; reg_start; }   # empty registry: every blob uploads
trap 'reg_stop; rm -rf "$work/tmp"' EXIT
reg_reset
log "registry $reg (pid $reg_pid), kiln $("$kiln" --version 2>&1 | head -1), $(skopeo --version)"

# ------------------------------------------------------------------ measuring
# measure CASE OP TOOL REP BYTES -- CMD...: runs CMD under GNU time, appends a TSV row
#   case op tool rep wall_s maxrss_kb cpu_s bytes rc foreign_cpu_s
tsv=$out.tsv
printf 'case\top\ttool\trep\twall_s\tmaxrss_kb\tcpu_s\tbytes\trc\tforeign_cpu_s\n' >"$tsv"
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }   # all but idle/iowait, ticks
tck=$(getconf CLK_TCK)
measure() {
  local c=$1 op=$2 tool=$3 rep=$4 bytes=$5; shift 6
  local tf=$work/tmp/time.out b0 b1 t0 t1 rc=0
  sync
  b0=$(busy); t0=$(date +%s%N)
  /usr/bin/time -f '%M %U %S' -o "$tf" "$@" >>"$work/commands.log" 2>&1 || rc=$?
  t1=$(date +%s%N); b1=$(busy)
  read -r rss u s <"$tf" || { rss=0 u=0 s=0; }
  local wall cpu foreign
  wall=$(python3 -c "print(round(($t1-$t0)/1e9,3))")
  cpu=$(python3 -c "print(round($u+$s,2))")
  foreign=$(python3 -c "print(round(max(0,($b1-$b0)/$tck-$cpu),2))")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$op" "$tool" "$rep" "$wall" "$rss" "$cpu" "$bytes" "$rc" "$foreign" >>"$tsv"
  log "$c $op $tool #$rep: ${wall}s rss $((rss / 1024)) MB cpu ${cpu}s foreign ${foreign}s rc $rc"
  if [ "$rc" != 0 ]; then echo "--- FAILED: $*" >&2; tail -n 5 "$work/commands.log" >&2; fi
}
# the pushed image's layer media types and sizes, from the registry
pushed() {
  curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.index.v1+json' \
    "http://$reg/v2/$1/manifests/$2" | python3 -c '
import json, sys
m = json.load(sys.stdin)
print(m.get("mediaType"), [(l["mediaType"].rsplit(".", 1)[-1], l["size"]) for l in m.get("layers", [])] or
      [d.get("platform") for d in m.get("manifests", [])])'
}

# a pulled layout must hold every blob under its own digest and the source's layers (untimed)
verify_pull() {
  python3 - "$1" "$2" <<'PY' || { echo "pulled layout $1 does not match $2" >&2; exit 1; }
import hashlib, os, sys
pulled, src = sys.argv[1], sys.argv[2]
names = lambda d: sorted(os.listdir(os.path.join(d, "blobs", "sha256")))
for n in names(pulled):
    h = hashlib.sha256()
    with open(os.path.join(pulled, "blobs", "sha256", n), "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    assert h.hexdigest() == n, n
import json
def layers(d):   # layer digests of the layout's (single) image manifest
    idx = json.load(open(os.path.join(d, "index.json")))
    m = json.load(open(os.path.join(d, "blobs", "sha256", idx["manifests"][0]["digest"].split(":")[1])))
    return sorted(l["digest"].split(":")[1] for l in m["layers"])
assert layers(pulled) == layers(src), (layers(pulled), layers(src))   # config/manifest may be rewritten (skopeo)
PY
}

mkdir -p "$work/tmp" "$work/ctx"
echo 'FROM base' >"$work/ctx/Dockerfile"
{ echo "# $(date -u) kiln $("$kiln" --version 2>&1 | head -1); $(skopeo --version)"; } >"$work/commands.log"

for c in $cases; do
  img=$work/images/$c
  bytes=$(blob_bytes "$img")
  # ---- push
  for i in $(seq "$reps"); do
    reg_reset
    measure "$c" push skopeo "$i" "$bytes" -- \
      skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$img:latest" "docker://$reg/bench/$c:skopeo"
  done
  log "skopeo pushed: $(pushed "bench/$c" skopeo)"
  for i in $(seq "$reps"); do
    reg_reset
    rm -rf "$work/kiln-home"
    measure "$c" push "kiln (cold store)" "$i" "$bytes" -- \
      env KILN_HOME="$work/kiln-home" "$kiln" build --platform linux/amd64 -f "$work/ctx/Dockerfile" \
      --build-context "base=oci-layout://$img:latest" --push -t "$reg/bench/$c:kiln" "$work/ctx"
  done
  log "kiln pushed: $(pushed "bench/$c" kiln)"
  for i in $(seq "$reps"); do   # the store keeps the image from the previous run
    reg_reset
    measure "$c" push "kiln (warm store)" "$i" "$bytes" -- \
      env KILN_HOME="$work/kiln-home" "$kiln" build --platform linux/amd64 -f "$work/ctx/Dockerfile" \
      --build-context "base=oci-layout://$img:latest" --push -t "$reg/bench/$c:kiln" "$work/ctx"
  done
  rm -rf "$work/kiln-home"
  # ---- pull (both pull the same image, pushed once by skopeo with its digests kept)
  reg_reset
  skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$img:latest" "docker://$reg/bench/$c:src" >&2
  for i in $(seq "$reps"); do
    rm -rf "$work/tmp/pull"
    measure "$c" pull skopeo "$i" "$bytes" -- \
      skopeo copy -q --preserve-digests --dest-oci-accept-uncompressed-layers --src-tls-verify=false "docker://$reg/bench/$c:src" "oci:$work/tmp/pull:latest"
    verify_pull "$work/tmp/pull" "$img"
    rm -rf "$work/tmp/pull" "$work/kiln-home"
    measure "$c" pull kiln "$i" "$bytes" -- \
      env KILN_HOME="$work/kiln-home" "$kiln" pull --platform linux/amd64 --output "$work/tmp/pull" "$reg/bench/$c:src"
    verify_pull "$work/tmp/pull" "$img"
  done
  rm -rf "$work/tmp/pull" "$work/kiln-home"
done

# ------------------------------------------------------------------ table
python3 - "$tsv" "$reps" >"$out.md" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = lambda xs: statistics.median(xs) if xs else None
groups = {}
for r in rows:
    groups.setdefault((r["case"], r["op"], r["tool"]), []).append(r)
label = {"big": "(a) 1 GiB layer, uncompressed tar", "small": "(b) 20,000 small files, gzip layer"}
print(f"Median of {sys.argv[2]} runs; MB/s = image blob bytes (layers + config + manifest) / wall time; "
      "RSS = peak resident set of the client process (GNU time %M); foreign = CPU-s other processes "
      "used during the run (median).\n")
print("| image | op | tool | wall s | MB/s | peak RSS MB | CPU s | foreign CPU s | vs skopeo (wall, RSS) | failed |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (c, op, tool), rs in groups.items():
    ok = [r for r in rs if r["rc"] == "0"]
    wall = med([float(r["wall_s"]) for r in ok]); rss = med([int(r["maxrss_kb"]) / 1024 for r in ok])
    cpu = med([float(r["cpu_s"]) for r in ok]); fo = med([float(r["foreign_cpu_s"]) for r in rs])
    b = int(rs[0]["bytes"])
    ref = [r for r in groups.get((c, op, "skopeo"), []) if r["rc"] == "0"]
    ratio = ""
    if tool != "skopeo" and ok and ref:
        rw = med([float(r["wall_s"]) for r in ref]); rr = med([int(r["maxrss_kb"]) / 1024 for r in ref])
        ratio = f"{wall / rw:.2f}x, {rss / rr:.2f}x"
    f = lambda v, nd=1: "—" if v is None else f"{v:.{nd}f}"
    print(f"| {label.get(c, c)} | {op} | {tool} | {f(wall, 2)} | {f(b / 1e6 / wall if wall else None, 0)} | "
          f"{f(rss, 0)} | {f(cpu, 2)} | {f(fo, 2)} | {ratio} | {len(rs) - len(ok) or ''} |")
PY
cat "$out.md"
log "wrote $tsv and $out.md (command output in $work/commands.log)"
