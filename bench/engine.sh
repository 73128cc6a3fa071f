#!/usr/bin/env bash
# Engine benchmark (issue 5): kiln side by side with Docker's embedded BuildKit and buildah, in ONE
# run of the shared harness (../shared/bench/bench.py), workloads w1 (COPY of 20,000 files), w2
# (multi-stage RUN writing 50 MB and 5,000 files) and w3 (w2 for linux/amd64 + linux/arm64, arm64
# RUN under QEMU), scenarios cold, noop, touch.
# Results: ../shared/bench/results/$TAG.{md,json}, moved to bench/results/.
#
# usage: bench/engine.sh [KILN_BINARY]
#   env: TAG (engine-DATE), WORKLOADS (w1,w2,w3), SCENARIOS (cold,noop,touch), PEERS (docker,buildah,candidate),
#        DOCKER_HOST/DOCKERD_PIDFILE (a private dockerd, started here if its socket is missing),
#        BENCH_QUIET_MAX_S, BENCH_RETRY_NOISY, BENCH_REPS: see ../shared/bench/README.md
# Needs root (the harness: buildah, iptables byte counters, /proc/PID/clear_refs).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
harness=${HARNESS:-$(cd "$here/../shared/bench" && pwd)}
kiln=$(realpath "${1:-${KILN:-/work/target-bench/release/kiln}}")
tag=${TAG:-engine-$(date -u +%Y-%m-%d)}
[ -x "$kiln" ] || { echo "no kiln binary at $kiln (CARGO_TARGET_DIR=/work/target-bench cargo build --release)" >&2; exit 2; }
command -v buildah >/dev/null || apt-get install -y -qq buildah >/dev/null

# A private Docker 20.10 engine (harness README), so other users of a shared dockerd stay out
# of the daemon's CPU/RSS numbers.
export DOCKER=${DOCKER:-/usr/bin/docker}
export DOCKER_HOST=${DOCKER_HOST:-unix:///tmp/odocker/docker.sock}
export DOCKERD_PIDFILE=${DOCKERD_PIDFILE:-/tmp/odocker/dockerd.pid}
if ! "$DOCKER" version >/dev/null 2>&1; then
  mkdir -p /tmp/odocker
  setsid /usr/sbin/dockerd --data-root /tmp/odocker/data --exec-root /tmp/odocker/exec \
    --pidfile /tmp/odocker/dockerd.pid -H unix:///tmp/odocker/docker.sock \
    --bridge=none --iptables=false --ip-masq=false >/tmp/odocker/dockerd.log 2>&1 &
  for _ in $(seq 60); do "$DOCKER" version >/dev/null 2>&1 && break; sleep 0.5; done
fi

# kiln is daemonless: its state is $KILN_HOME; wiping it = cold cache.
export KILN_HOME=${KILN_BENCH_HOME:-/tmp/kiln-bench-home}
export CANDIDATE="KILN_HOME=$KILN_HOME $kiln build --progress plain -f {dockerfile} --platform {platforms} --build-arg REGISTRY={registry} --push -t {ref} {cache_args} {context}"
export CANDIDATE_WIPE="rm -rf $KILN_HOME"
export CANDIDATE_NAME=kiln
export CANDIDATE_VERSION_CMD="$kiln --version"
# The arm64 busybox for the harness's base image (W3); the kiln test environment has one.
export BUSYBOX_ARM64=${BUSYBOX_ARM64:-/tmp/kiln-testenv/cache/busybox/arm64/bin/busybox}

cd "$harness"
[ -d /tmp/obench/registry/base-snapshot ] || python3 bench.py setup
python3 bench.py run --tag "$tag" --peers "${PEERS:-docker,buildah,candidate}" \
  --workloads "${WORKLOADS:-w1,w2,w3}" --scenarios "${SCENARIOS:-cold,noop,touch}" \
  --note "kiln: $("$kiln" --version) via CANDIDATE (daemonless, KILN_HOME wiped for cold); cache scenario skipped (kiln has no cache export yet)" \
  --note "docker: private dockerd 20.10 ($DOCKER_HOST)"
mkdir -p "$here/bench/results"
mv "results/$tag.md" "results/$tag.json" "$here/bench/results/"
echo "moved results/$tag.{md,json} to $here/bench/results/"
