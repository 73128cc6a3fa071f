#!/usr/bin/env bash
# kiln test environment: local registries, qemu binfmt, a private dockerd and
# multi-platform busybox base images, all made offline from Debian packages.
#
#   scripts/test-env.sh up       install/start everything (idempotent)
#   scripts/test-env.sh down     stop what `up` started (binfmt entries stay)
#   scripts/test-env.sh status   show what is running
#   scripts/test-env.sh env      print the env.sh path and contents
#
# State (pids, logs, configs in use, storage, caches): ${KILN_TESTENV:-/tmp/kiln-testenv}.
# Tests read the variables written to $KILN_TESTENV/env.sh. See scripts/testenv/README.md.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONF_DIR="$SCRIPT_DIR/testenv"
STATE="$(realpath -m -- "${KILN_TESTENV:-/tmp/kiln-testenv}")"

REGISTRY_PORT=5000
AUTH_REGISTRY_PORT=5001
REGISTRY_USER=kiln
REGISTRY_PASSWORD=kiln-test-password
BASE_REPO=base/busybox
PRIVATE_REPO=private/busybox
TAG=latest

# Debian packages the environment is made of.
PACKAGES=(docker-registry docker.io qemu-user-static busybox-static skopeo jq apache2-utils python3 tar iproute2 curl uidmap git)
# qemu binfmt entries to register (names of /usr/share/binfmts/qemu-NAME).
BINFMT_ARCHES=(aarch64 arm ppc64le s390x riscv64)
# Image platform -> Debian architecture of the busybox-static it is made from.
# amd64 uses the host's /bin/busybox (busybox-static is installed for the host).
IMAGE_PLATFORMS=(linux/amd64 linux/arm64 linux/arm/v7 linux/ppc64le linux/s390x)
declare -A DEB_ARCH=(
  [linux/arm64]=arm64
  [linux/arm/v7]=armhf
  [linux/ppc64le]=ppc64el
  [linux/s390x]=s390x
)

DOCKER_BIN=/usr/sbin/dockerd
DOCKER_CLI=/usr/bin/docker # Debian's client, whatever else is on PATH
DOCKER_DIR="$STATE/docker"
DOCKER_SOCK="$STATE/docker.sock"
# In the command line of our dockerd only (tells it apart from any other one).
DOCKERD_MARK="--exec-root $DOCKER_DIR/exec"
# dockerd's embedded BuildKit runs RUN steps on the engine's "bridge" network, so
# the engine needs one; ours is a dedicated Linux bridge (no NAT, no iptables,
# no route out), never docker0, so another dockerd on the machine is not touched.
BRIDGE="${KILN_TESTENV_BRIDGE:-kilntest0}"
BRIDGE_CIDR="${KILN_TESTENV_BRIDGE_CIDR:-10.213.77.1/24}"
LAYOUT="$STATE/images/busybox-oci"
# Unprivileged users for the rootless tests: one with subordinate id ranges in
# /etc/subuid and /etc/subgid (the full user-namespace mapping through uidmap's
# newuidmap/newgidmap), one without (kiln falls back to a single-id mapping).
ROOTLESS_USER=kilntest
ROOTLESS_SUBID_START=1000000
ROOTLESS_SUBID_COUNT=65536
NOSUBID_USER=kilnnosub
LOG_DIR="$STATE/logs"

# ---------------------------------------------------------------------------
# helpers

say() { printf '[test-env] %s\n' "$*" >&2; }
die() {
  printf '[test-env] ERROR: %s\n' "$*" >&2
  exit 1
}

# die_with_log LOGFILE MESSAGE: fail and show the end of a log.
die_with_log() {
  local log=$1
  shift
  printf '[test-env] ERROR: %s\n' "$*" >&2
  if [[ -f $log ]]; then
    printf '[test-env] ---- last lines of %s ----\n' "$log" >&2
    tail -n 40 "$log" >&2 || true
    printf '[test-env] ---- end of %s ----\n' "$log" >&2
  fi
  exit 1
}

# run_logged LOGFILE CMD...: run quietly, output appended to LOGFILE.
run_logged() {
  local log=$1
  shift
  printf '\n$ %s\n' "$*" >>"$log"
  "$@" >>"$log" 2>&1
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# pid_alive PIDFILE PATTERN: the pid in PIDFILE runs and its command line contains PATTERN.
pid_alive() {
  local pidfile=$1 pattern=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern"
}

pid_of() { cat "$1" 2>/dev/null || true; }

# http_status PORT PATH: print the HTTP status of GET http://127.0.0.1:PORT/PATH (empty if no answer).
http_status() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3
    line='' code=''
    IFS= read -r -t 5 line <&3 || true
    read -r _ code _ <<<"$line"
    printf '%s' "$code"
  ) 2>/dev/null || true
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop_pid PIDFILE PATTERN WHAT: SIGTERM the process if it is ours, wait, then SIGKILL.
stop_pid() {
  local pidfile=$1 pattern=$2 what=$3 pid i
  if ! pid_alive "$pidfile" "$pattern"; then
    rm -f "$pidfile"
    return 0
  fi
  pid=$(<"$pidfile")
  say "stopping $what (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    [[ -e /proc/$pid ]] || break
    sleep 0.2
  done
  if [[ -e /proc/$pid ]]; then
    say "$what (pid $pid) ignored SIGTERM for 30s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$pidfile"
}

need_root() {
  if [[ $EUID -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      exec sudo -E KILN_TESTENV="$STATE" bash "$0" "$@"
    fi
    die "this needs root (apt, binfmt_misc, dockerd); run it as root or install sudo"
  fi
}

POLICY_RC_CREATED=""
cleanup() {
  if [[ -n $POLICY_RC_CREATED ]]; then
    rm -f "$POLICY_RC_CREATED"
    POLICY_RC_CREATED=""
  fi
}

# ---------------------------------------------------------------------------
# 1. packages (host tools + busybox-static for every image architecture)

pkg_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == installed ]]
}

cached_deb() { compgen -G "$STATE/cache/debs/busybox-static_*_$1.deb" | head -n 1 || true; }

install_packages() {
  local t0 log="$LOG_DIR/apt.log" missing=() need_debs=() arch p updated=0
  t0=$(now)
  for p in "${PACKAGES[@]}"; do
    pkg_installed "$p" || missing+=("$p")
  done
  for arch in "${DEB_ARCH[@]}"; do
    [[ -n "$(cached_deb "$arch")" ]] || need_debs+=("$arch")
  done
  if ((${#missing[@]} == 0 && ${#need_debs[@]} == 0)); then
    return 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Waits for a dpkg/apt lock held by someone else (e.g. unattended-upgrades on a fresh VM).
  local apt=(apt-get -q -y -o Dpkg::Use-Pty=0 -o APT::Color=0 -o DPkg::Lock::Timeout=300)

  # Foreign architectures first, so one `apt-get update` covers everything.
  local foreign
  foreign=" $(dpkg --print-foreign-architectures | tr '\n' ' ') "
  for arch in "${need_debs[@]}"; do
    if [[ $foreign != *" $arch "* ]]; then
      run_logged "$log" dpkg --add-architecture "$arch" || die_with_log "$log" "dpkg --add-architecture $arch failed"
      updated=-1 # lists for the new architecture are missing
    fi
  done

  apt_update() {
    say "apt-get update"
    # A third-party source that cannot be reached fails the update although
    # Debian's indexes came in; whether what we need is there is checked below.
    run_logged "$log" "${apt[@]}" update || say "apt-get update reported errors (see $log); going on"
    updated=1
  }

  if ((${#missing[@]})); then
    ((updated == 1)) || apt_update
    say "installing ${missing[*]}"
    # Keep package scripts from starting system services (a system registry on
    # :5000 or a system dockerd would get in the way); restore the state after.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
      POLICY_RC_CREATED=/usr/sbin/policy-rc.d # removed by cleanup(), on any exit
    fi
    run_logged "$log" "${apt[@]}" install --no-install-recommends "${missing[@]}" ||
      die_with_log "$log" "apt-get install ${missing[*]} failed"
    cleanup
  fi

  if ((${#need_debs[@]})); then
    mkdir -p "$STATE/cache/debs"
    local names=()
    for arch in "${need_debs[@]}"; do names+=("busybox-static:$arch"); done
    # A newly added architecture has no indexes yet.
    ((updated != -1)) || apt_update
    say "downloading ${names[*]}"
    # apt-get download warns when its sandbox user cannot write here; harmless.
    if ! (cd "$STATE/cache/debs" && run_logged "$log" apt-get -q download "${names[@]}"); then
      # Indexes missing or stale (or a mirror caught mid-sync): update, one more try.
      say "apt-get download failed; updating the indexes and trying again"
      apt_update
      (cd "$STATE/cache/debs" && run_logged "$log" apt-get -q download "${names[@]}") ||
        die_with_log "$log" "apt-get download ${names[*]} failed"
    fi
  fi
  for p in "${PACKAGES[@]}"; do
    pkg_installed "$p" || die_with_log "$log" "package $p is still not installed"
  done
  say "packages ready ($(elapsed "$t0"))"
}

# busybox_for PLATFORM: path of the static busybox binary for an image platform.
busybox_for() {
  local platform=$1 arch deb dir
  if [[ $platform == linux/amd64 ]]; then
    printf '%s\n' /bin/busybox
    return
  fi
  arch=${DEB_ARCH[$platform]}
  dir="$STATE/cache/busybox/$arch"
  if [[ ! -x $dir/bin/busybox ]]; then
    deb=$(cached_deb "$arch")
    [[ -n $deb ]] || die "no busybox-static deb for $arch in $STATE/cache/debs"
    rm -rf "$dir"
    mkdir -p "$dir"
    dpkg -x "$deb" "$dir"
    [[ -x $dir/bin/busybox ]] || die "$deb has no bin/busybox"
  fi
  printf '%s\n' "$dir/bin/busybox"
}

# ---------------------------------------------------------------------------
# 3. registries

start_registry() {
  local name=$1 port=$2 auth=$3 dir="$STATE/registry-$1" code i
  local pidfile="$dir/registry.pid" log="$dir/registry.log" conf="$dir/config.yml"

  # The config this run wants: the repo's file with the state paths filled in.
  mkdir -p "$dir/storage"
  if ((auth)) && [[ ! -s $dir/htpasswd ]]; then
    htpasswd -Bbn "$REGISTRY_USER" "$REGISTRY_PASSWORD" | sed '/^$/d' >"$dir/htpasswd.tmp"
    mv "$dir/htpasswd.tmp" "$dir/htpasswd"
  fi
  sed -e "s|@STORAGE@|$dir/storage|" -e "s|@HTPASSWD@|$dir/htpasswd|" \
    "$CONF_DIR/registry-$name.yml" >"$conf.new"

  if pid_alive "$pidfile" "docker-registry serve $conf"; then
    code=$(http_status "$port" /v2/)
    if [[ -z $code ]]; then
      say "registry $name (pid $(pid_of "$pidfile")) does not answer; restarting it"
    elif ! cmp -s "$conf.new" "$conf"; then
      say "registry $name (pid $(pid_of "$pidfile")) runs an older config; restarting it"
    else
      rm -f "$conf.new"
      say "registry $name already running on 127.0.0.1:$port (pid $(pid_of "$pidfile"))"
      return 0
    fi
    stop_pid "$pidfile" "docker-registry serve $conf" "registry $name"
  fi
  if port_open "$port"; then
    die "127.0.0.1:$port is taken by a process that test-env.sh did not start (no live pid in $pidfile); stop it or free the port"
  fi
  mv "$conf.new" "$conf"

  printf '\n==== start %s ====\n' "$(date -u +%FT%TZ)" >>"$log"
  # shellcheck disable=SC2016 # $$, $1, $2 belong to the inner shell.
  # The shell writes its own pid, then becomes the registry (exec keeps the pid).
  setsid bash -c 'echo $$ >"$1"; exec docker-registry serve "$2"' _ "$pidfile" "$conf" \
    >>"$log" 2>&1 </dev/null 9>&- &
  for ((i = 0; i < 100; i++)); do
    code=$(http_status "$port" /v2/)
    [[ -n $code ]] && break
    if ((i > 5)) && ! pid_alive "$pidfile" "docker-registry serve"; then
      die_with_log "$log" "registry $name exited at start"
    fi
    sleep 0.1
  done
  [[ -n $code ]] || die_with_log "$log" "registry $name does not answer on 127.0.0.1:$port/v2/ after 10s"
  if ((auth)) && [[ $code != 401 ]]; then
    die_with_log "$log" "registry $name answers $code to an anonymous /v2/ (want 401)"
  fi
  if ((!auth)) && [[ $code != 200 ]]; then
    die_with_log "$log" "registry $name answers $code to /v2/ (want 200)"
  fi
  say "registry $name started on 127.0.0.1:$port (pid $(pid_of "$pidfile"))"
}

# ---------------------------------------------------------------------------
# 4. binfmt_misc

register_binfmt() {
  local name=$1 def="/usr/share/binfmts/qemu-$1" entry="/proc/sys/fs/binfmt_misc/qemu-$1"
  local key value magic="" mask="" interp="" offset=0 flags=""
  [[ -f $def ]] || die "no binfmt definition $def (is qemu-user-static installed?)"
  while read -r key value; do
    case $key in
      magic) magic=$value ;;
      mask) mask=$value ;;
      interpreter) interp=$value ;;
      offset) offset=$value ;;
      fix_binary) [[ $value == yes ]] && flags+=F ;;
      preserve) [[ $value == yes ]] && flags+=P ;;
      credentials) [[ $value == yes ]] && flags+=C ;;
    esac
  done <"$def"
  [[ -n $magic && -n $interp ]] || die "cannot parse $def"
  [[ -x $interp ]] || die "interpreter $interp from $def is missing"

  if [[ -e $entry ]]; then
    if grep -q '^enabled' "$entry" && grep -q '^flags:.*F' "$entry" &&
      grep -qxF "interpreter $interp" "$entry"; then
      return 0
    fi
    say "re-registering qemu-$name (was: $(grep '^flags' "$entry" | tr '\n' ' '))"
    echo -1 >"$entry"
  fi
  printf ':qemu-%s:M:%s:%s:%s:%s:%s' "$name" "$offset" "$magic" "$mask" "$interp" "$flags" \
    >/proc/sys/fs/binfmt_misc/register || die "registering qemu-$name in binfmt_misc failed"
  say "registered qemu-$name ($interp, flags $flags)"
}

setup_binfmt() {
  local a
  if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
      die "cannot mount binfmt_misc on /proc/sys/fs/binfmt_misc (kernel module missing or no privilege)"
  fi
  if [[ "$(cat /proc/sys/fs/binfmt_misc/status)" != enabled ]]; then
    echo 1 >/proc/sys/fs/binfmt_misc/status
  fi
  for a in "${BINFMT_ARCHES[@]}"; do register_binfmt "$a"; done
}

# ---------------------------------------------------------------------------
# 5. dockerd

# dockerd needs cgroups; most machines mount them at boot. When nothing is
# mounted at all (a bare init), mount the unified hierarchy (dockerd 20.10 runs on v2).
ensure_cgroups() {
  if ! awk '$3 == "cgroup" || $3 == "cgroup2" { found = 1 } END { exit !found }' /proc/self/mounts; then
    say "no cgroup filesystem is mounted; mounting cgroup2 on /sys/fs/cgroup"
    mount -t cgroup2 cgroup2 /sys/fs/cgroup || die "cannot mount cgroup2 on /sys/fs/cgroup; dockerd needs cgroups"
  fi
}

setup_bridge() {
  local log="$LOG_DIR/bridge.log" net clash
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    net=${BRIDGE_CIDR%/*}
    clash=$(ip -4 route show match "$net" 2>/dev/null | grep -v '^default' || true)
    [[ -z $clash ]] || die "$BRIDGE_CIDR for the test dockerd's bridge overlaps a route of this machine ($clash); set KILN_TESTENV_BRIDGE_CIDR to a free one"
    run_logged "$log" ip link add name "$BRIDGE" type bridge ||
      die_with_log "$log" "cannot create the bridge $BRIDGE for the test dockerd"
  fi
  # dockerd takes the bridge's address as the gateway (it refuses --bip with -b).
  if ! ip -4 -o addr show dev "$BRIDGE" | grep -qF " ${BRIDGE_CIDR} "; then
    run_logged "$log" ip addr add "$BRIDGE_CIDR" dev "$BRIDGE" ||
      die_with_log "$log" "cannot give $BRIDGE the address $BRIDGE_CIDR"
  fi
  run_logged "$log" ip link set "$BRIDGE" up || die_with_log "$log" "cannot bring up $BRIDGE"
}

docker_cli() { "$DOCKER_CLI" -H "unix://$DOCKER_SOCK" "$@"; }

docker_answers() { docker_cli version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start_dockerd() {
  local pidfile="$DOCKER_DIR/dockerd.pid" log="$DOCKER_DIR/dockerd.log" i
  local wanted="$DOCKER_DIR/settings.new" settings="$DOCKER_DIR/settings"
  local args=(
    --config-file "$DOCKER_DIR/daemon.json"
    --data-root "$DOCKER_DIR/data"
    --exec-root "$DOCKER_DIR/exec"
    --pidfile "$pidfile"
    -H "unix://$DOCKER_SOCK"
    --bridge="$BRIDGE" --iptables=false --ip-masq=false --ip-forward=false
    --userland-proxy=false
  )
  # Our own config file, so /etc/docker/daemon.json of the machine plays no part.
  # (127.0.0.0/8 is insecure by default; listed to be explicit.)
  local config
  config=$(printf '{\n  "features": { "buildkit": true },\n  "insecure-registries": ["127.0.0.1:%s", "127.0.0.1:%s"]\n}' \
    "$REGISTRY_PORT" "$AUTH_REGISTRY_PORT")
  DOCKERD_FRESH=0
  mkdir -p "$DOCKER_DIR/data" "$DOCKER_DIR/exec"
  # What this run wants; a running dockerd started with anything else is restarted.
  printf '%s\n' "$config" "${args[@]}" "bridge $BRIDGE_CIDR" >"$wanted"

  if pid_alive "$pidfile" "$DOCKERD_MARK"; then
    if ! docker_answers; then
      say "dockerd (pid $(pid_of "$pidfile")) does not answer; restarting it"
    elif ! cmp -s "$wanted" "$settings"; then
      say "dockerd (pid $(pid_of "$pidfile")) runs with older settings; restarting it"
    else
      rm -f "$wanted"
      say "dockerd already running (pid $(pid_of "$pidfile"), unix://$DOCKER_SOCK)"
      return 0
    fi
    stop_docker
  fi
  if [[ -S $DOCKER_SOCK ]] && docker_answers; then
    die "a docker engine that test-env.sh did not start answers on $DOCKER_SOCK; stop it first"
  fi

  # containerd's sockets live under --exec-root; unix socket paths end at 108 bytes.
  local longest="$DOCKER_DIR/exec/containerd/containerd.sock.ttrpc"
  ((${#longest} < 100)) || die "KILN_TESTENV=$STATE is too long for dockerd's unix sockets ($longest); use a shorter path"
  ensure_cgroups
  setup_bridge
  printf '%s\n' "$config" >"$DOCKER_DIR/daemon.json"
  mv "$wanted" "$settings"
  printf '\n==== start %s ====\n' "$(date -u +%FT%TZ)" >>"$log"
  # Without --containerd, dockerd runs its own containerd under --exec-root.
  setsid "$DOCKER_BIN" "${args[@]}" >>"$log" 2>&1 </dev/null 9>&- &
  local launcher=$!
  for ((i = 0; i < 300; i++)); do
    docker_answers && break
    if ! kill -0 "$launcher" 2>/dev/null && ! pid_alive "$pidfile" "$DOCKERD_MARK"; then
      die_with_log "$log" "dockerd exited at start (this kernel/container may lack what it needs: cgroups, overlay, namespaces)"
    fi
    sleep 0.2
  done
  docker_answers || die_with_log "$log" "dockerd does not answer on unix://$DOCKER_SOCK after 60s"
  DOCKERD_FRESH=1
  say "dockerd started (pid $(pid_of "$pidfile"), unix://$DOCKER_SOCK)"
}

# Check that the engine can pull from the local registry, run a container
# (containerd, runc, cgroups, overlay, the bridge) and build with its embedded
# BuildKit, foreign-arch RUN included. Done once per dockerd start; what it
# leaves in the engine is removed again.
smoke_docker() {
  local log="$DOCKER_DIR/dockerd.log" out image="127.0.0.1:$REGISTRY_PORT/$BASE_REPO:$TAG"
  local tag=kiln-testenv-smoke:latest
  if ! out=$(docker_cli run --rm --pull always "$image" sh -c 'echo kiln-ok' 2>&1); then
    printf '%s\n' "$out" >&2
    die_with_log "$log" "dockerd answers but cannot run a container from $image"
  fi
  [[ $out == *kiln-ok* ]] || die_with_log "$log" "container from $image printed: $out"
  if ! out=$(printf 'FROM %s\nRUN uname -m >/arch\n' "$image" |
    DOCKER_BUILDKIT=1 docker_cli build -q --platform linux/arm64 -t "$tag" - 2>&1); then
    printf '%s\n' "$out" >&2
    die_with_log "$log" "dockerd's BuildKit cannot build FROM $image with a linux/arm64 RUN step"
  fi
  out=$(docker_cli run --rm --platform linux/arm64 "$tag" cat /arch 2>>"$log") || true
  [[ $out == aarch64 ]] || die_with_log "$log" "linux/arm64 RUN in dockerd's BuildKit saw uname -m '$out', want aarch64"
  docker_cli image rm "$tag" "$image" >/dev/null 2>&1 || true
  docker_cli builder prune -af >/dev/null 2>&1 || true
  say "dockerd runs containers and BuildKit builds (linux/arm64 RUN via qemu)"
}

stop_docker() {
  local exec_root="$DOCKER_DIR/exec" f mnt
  stop_pid "$DOCKER_DIR/dockerd.pid" "$DOCKERD_MARK" dockerd
  # dockerd stops its containerd; anything left behind is ours by pidfile.
  stop_pid "$exec_root/containerd/containerd.pid" "$exec_root/containerd" containerd
  if [[ -d $exec_root/containerd ]]; then
    while IFS= read -r f; do
      stop_pid "$f" "containerd-shim" "containerd-shim"
    done < <(find "$exec_root/containerd" -name shim.pid 2>/dev/null)
  fi
  # Mounts a killed dockerd may have left under our directory.
  if [[ -r /proc/self/mountinfo ]]; then
    while IFS= read -r mnt; do
      umount -l "$mnt" 2>/dev/null || true
    done < <(awk -v d="$DOCKER_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  fi
}

# ---------------------------------------------------------------------------
# 6. base images

# manifest_digest REF [SKOPEO ARGS...]: digest of the raw manifest at REF (empty if none).
manifest_digest() {
  local ref=$1 raw
  shift
  raw=$(skopeo inspect --raw --tls-verify=false "$@" "docker://$ref" 2>/dev/null) || return 0
  printf 'sha256:%s' "$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)"
}

make_images() {
  local t0 log="$LOG_DIR/images.log" stamp_file="$LAYOUT.stamp" stamp platform bin digest
  local args=()
  t0=$(now)
  stamp="script $(sha256sum "$CONF_DIR/make_base_images.py" | cut -d' ' -f1)"
  for platform in "${IMAGE_PLATFORMS[@]}"; do
    bin=$(busybox_for "$platform")
    args+=(--busybox "$platform=$bin")
    stamp+=" $platform=$(sha256sum "$bin" | cut -d' ' -f1)"
  done

  if [[ -f $LAYOUT/index.json && -f $stamp_file && "$(head -n 1 "$stamp_file")" == "$stamp" ]]; then
    digest=$(sed -n 2p "$stamp_file")
  else
    say "writing OCI layout $LAYOUT"
    mkdir -p "$(dirname "$LAYOUT")"
    digest=$(python3 "$CONF_DIR/make_base_images.py" --out "$LAYOUT" --tag "$TAG" \
      --note "kiln test-env: busybox-static rootfs" "${args[@]}" 2>>"$log") ||
      die_with_log "$log" "make_base_images.py failed"
    printf '%s\n%s\n' "$stamp" "$digest" >"$stamp_file"
  fi
  IMAGE_DIGEST=$digest

  push_image "127.0.0.1:$REGISTRY_PORT/$BASE_REPO:$TAG"
  push_image "127.0.0.1:$AUTH_REGISTRY_PORT/$PRIVATE_REPO:$TAG" \
    "$REGISTRY_USER:$REGISTRY_PASSWORD"
  say "base images ready ($IMAGE_DIGEST, $(elapsed "$t0"))"
}

# push_image REF [CREDS]: copy the layout's index to REF unless it is already there.
push_image() {
  local ref=$1 creds=${2:-} log="$LOG_DIR/images.log" have
  local src_creds=() dst_creds=()
  if [[ -n $creds ]]; then
    src_creds=(--creds "$creds")
    dst_creds=(--dest-creds "$creds")
  else
    src_creds=(--no-creds)
  fi
  have=$(manifest_digest "$ref" "${src_creds[@]}")
  if [[ $have == "$IMAGE_DIGEST" ]]; then
    return 0
  fi
  say "pushing $ref"
  run_logged "$log" skopeo --insecure-policy copy --all --retry-times 2 --dest-tls-verify=false \
    "${dst_creds[@]}" "oci:$LAYOUT:$TAG" "docker://$ref" ||
    die_with_log "$log" "skopeo copy to $ref failed"
  have=$(manifest_digest "$ref" "${src_creds[@]}")
  [[ $have == "$IMAGE_DIGEST" ]] ||
    die_with_log "$log" "$ref has digest '$have' after the push, want $IMAGE_DIGEST"
}

# ---------------------------------------------------------------------------
# 7. users for the rootless tests

# subid_line FILE USER: the first line of FILE (/etc/subuid, /etc/subgid) for USER.
subid_line() { grep -m 1 "^$2:" "$1" 2>/dev/null || true; }

setup_users() {
  local log="$LOG_DIR/users.log" u f
  for u in "$ROOTLESS_USER" "$NOSUBID_USER"; do
    if ! id -u "$u" >/dev/null 2>&1; then
      say "creating the user $u"
      run_logged "$log" useradd --create-home --shell /bin/sh --user-group "$u" ||
        die_with_log "$log" "useradd $u failed"
    fi
  done
  for f in /etc/subuid /etc/subgid; do
    [[ -e $f ]] || : >"$f"
    if [[ -z "$(subid_line "$f" "$ROOTLESS_USER")" ]]; then
      printf '%s:%s:%s\n' "$ROOTLESS_USER" "$ROOTLESS_SUBID_START" "$ROOTLESS_SUBID_COUNT" >>"$f"
    fi
    # useradd may have given it ranges (SUB_UID_MIN in login.defs): it must have none.
    if [[ -n "$(subid_line "$f" "$NOSUBID_USER")" ]]; then
      sed -i "/^$NOSUBID_USER:/d" "$f"
    fi
  done
  for f in /usr/bin/newuidmap /usr/bin/newgidmap; do
    [[ -u $f ]] || die "$f is not setuid root (package uidmap)"
  done
  if [[ "$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 0)" == 0 ]]; then
    say "user namespaces are disabled (user.max_user_namespaces=0): the rootless tests will skip"
  fi
}

# ---------------------------------------------------------------------------
# 8. env.sh

# squote VALUE: VALUE as one single-quoted shell word.
squote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

write_env() {
  local tmp="$STATE/env.sh.tmp" platforms
  platforms=$(
    IFS=,
    echo "${IMAGE_PLATFORMS[*]}"
  )
  {
    echo "# kiln test environment, written by scripts/test-env.sh up. Source it."
    printf 'export KILN_TESTENV=%s\n' "$(squote "$STATE")"
    printf 'export KILN_TEST_REGISTRY=%s\n' "$(squote "127.0.0.1:$REGISTRY_PORT")"
    printf 'export KILN_TEST_AUTH_REGISTRY=%s\n' "$(squote "127.0.0.1:$AUTH_REGISTRY_PORT")"
    printf 'export KILN_TEST_REGISTRY_USER=%s\n' "$(squote "$REGISTRY_USER")"
    printf 'export KILN_TEST_REGISTRY_PASSWORD=%s\n' "$(squote "$REGISTRY_PASSWORD")"
    printf 'export KILN_TEST_BASE_IMAGE=%s\n' "$(squote "127.0.0.1:$REGISTRY_PORT/$BASE_REPO:$TAG")"
    printf 'export KILN_TEST_PRIVATE_IMAGE=%s\n' "$(squote "127.0.0.1:$AUTH_REGISTRY_PORT/$PRIVATE_REPO:$TAG")"
    printf 'export KILN_TEST_BASE_LAYOUT=%s\n' "$(squote "$LAYOUT")"
    printf 'export KILN_TEST_DOCKER_HOST=%s\n' "$(squote "unix://$DOCKER_SOCK")"
    printf 'export KILN_TEST_PLATFORMS=%s\n' "$(squote "$platforms")"
    printf 'export KILN_TEST_ROOTLESS_USER=%s\n' "$(squote "$ROOTLESS_USER")"
    printf 'export KILN_TEST_NOSUBID_USER=%s\n' "$(squote "$NOSUBID_USER")"
  } >"$tmp"
  mv "$tmp" "$STATE/env.sh"
}

# ---------------------------------------------------------------------------
# commands

cmd_up() {
  local t0
  t0=$(now)
  need_root up
  mkdir -p "$STATE" "$LOG_DIR"
  exec 9>"$STATE/lock"
  flock -w 600 9 || die "another test-env.sh holds $STATE/lock"
  trap cleanup EXIT

  install_packages
  start_registry noauth "$REGISTRY_PORT" 0
  start_registry auth "$AUTH_REGISTRY_PORT" 1
  setup_binfmt
  start_dockerd
  make_images
  setup_users
  if ((DOCKERD_FRESH)) || [[ ! -f $DOCKER_DIR/smoke-ok ]]; then
    smoke_docker
    date -u +%FT%TZ >"$DOCKER_DIR/smoke-ok"
  fi
  write_env

  cat <<EOF
kiln test environment is up ($(elapsed "$t0"))
  registry (no auth)  http://127.0.0.1:$REGISTRY_PORT   pid $(pid_of "$STATE/registry-noauth/registry.pid")
  registry (htpasswd) http://127.0.0.1:$AUTH_REGISTRY_PORT   pid $(pid_of "$STATE/registry-auth/registry.pid")   user $REGISTRY_USER
  dockerd             unix://$DOCKER_SOCK   pid $(pid_of "$DOCKER_DIR/dockerd.pid"), containerd pid $(pid_of "$DOCKER_DIR/exec/containerd/containerd.pid")
  binfmt (qemu)       ${BINFMT_ARCHES[*]}
  base image          127.0.0.1:$REGISTRY_PORT/$BASE_REPO:$TAG  (also 127.0.0.1:$AUTH_REGISTRY_PORT/$PRIVATE_REPO:$TAG)
                      $IMAGE_DIGEST  ${IMAGE_PLATFORMS[*]}
  OCI layout          $LAYOUT
  rootless users      $ROOTLESS_USER ($(subid_line /etc/subuid "$ROOTLESS_USER")), $NOSUBID_USER (no subordinate ids)
  logs                $LOG_DIR, $STATE/registry-*/registry.log, $DOCKER_DIR/dockerd.log
Use it:  source $STATE/env.sh
EOF
}

cmd_down() {
  need_root down
  [[ -d $STATE ]] || {
    say "nothing to stop ($STATE does not exist)"
    return 0
  }
  mkdir -p "$STATE"
  exec 9>"$STATE/lock"
  flock -w 120 9 || die "another test-env.sh holds $STATE/lock"
  stop_docker
  rm -f "$DOCKER_DIR/smoke-ok"
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link delete "$BRIDGE" type bridge 2>/dev/null || say "could not delete the bridge $BRIDGE"
  fi
  stop_pid "$STATE/registry-auth/registry.pid" "docker-registry serve" "registry auth"
  stop_pid "$STATE/registry-noauth/registry.pid" "docker-registry serve" "registry noauth"
  say "stopped; binfmt entries stay registered, state kept in $STATE"
}

cmd_status() {
  local ok=1 name port a e
  report() { printf '  %-22s %s\n' "$1" "$2"; }
  echo "kiln test environment in $STATE"
  for name in noauth auth; do
    port=$REGISTRY_PORT
    [[ $name == noauth ]] || port=$AUTH_REGISTRY_PORT
    if pid_alive "$STATE/registry-$name/registry.pid" "docker-registry serve"; then
      report "registry $name" "running, pid $(pid_of "$STATE/registry-$name/registry.pid"), 127.0.0.1:$port answers /v2/ with $(http_status "$port" /v2/)"
    else
      ok=0
      report "registry $name" "stopped"
    fi
  done
  if pid_alive "$DOCKER_DIR/dockerd.pid" "$DOCKERD_MARK"; then
    report dockerd "running, pid $(pid_of "$DOCKER_DIR/dockerd.pid"), unix://$DOCKER_SOCK, server $(docker_cli version --format '{{.Server.Version}}' 2>/dev/null || echo 'not answering')"
  else
    ok=0
    report dockerd stopped
  fi
  if pid_alive "$DOCKER_DIR/exec/containerd/containerd.pid" "$DOCKER_DIR/exec/containerd"; then
    report containerd "running, pid $(pid_of "$DOCKER_DIR/exec/containerd/containerd.pid") (managed by dockerd)"
  else
    report containerd stopped
  fi
  for a in "${BINFMT_ARCHES[@]}"; do
    e=/proc/sys/fs/binfmt_misc/qemu-$a
    if [[ -e $e ]]; then
      report "binfmt qemu-$a" "$(head -n 1 "$e"), $(grep '^flags' "$e")"
    else
      ok=0
      report "binfmt qemu-$a" "not registered"
    fi
  done
  if [[ -f $LAYOUT/index.json ]]; then
    report "OCI layout" "$LAYOUT ($(sed -n 2p "$LAYOUT.stamp" 2>/dev/null))"
  else
    ok=0
    report "OCI layout" "missing"
  fi
  if id -u "$NOSUBID_USER" >/dev/null 2>&1 && [[ -n "$(subid_line /etc/subuid "$ROOTLESS_USER")" ]]; then
    report "rootless users" "$ROOTLESS_USER ($(subid_line /etc/subuid "$ROOTLESS_USER")), $NOSUBID_USER (no subordinate ids)"
  else
    ok=0
    report "rootless users" "missing"
  fi
  if [[ -f $STATE/env.sh ]]; then report env.sh "$STATE/env.sh"; else report env.sh missing; fi
  ((ok)) || return 3
}

cmd_env() {
  [[ -f $STATE/env.sh ]] || die "$STATE/env.sh does not exist; run: scripts/test-env.sh up"
  echo "# $STATE/env.sh"
  cat "$STATE/env.sh"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *)
    echo "usage: $0 up|down|status|env" >&2
    exit 2
    ;;
esac
