# shellcheck shell=bash disable=SC2034,SC2120
# (SC2034: the TE_* variables are the interface to the scripts that source this; SC2120: optional arguments)
# testenv.sh — a throwaway world for demos and benchmarks, sourced by bash scripts (as root):
# its own docker-registry on a free loopback port, its own containerd (private root, state and sockets,
# [proxy_plugins.dedup]) and the dedup-snapshotter daemon, all under one unique temp dir.
# containerd is the primary 2.x release of scripts/lib/go-versions.sh (built by scripts/go-tools.sh into
# build/tools, which this runs if the binaries are missing) unless TE_CONTAINERD names another: a 2.x version
# (prefix, e.g. 2.2) or 1.6 (Debian's /usr/bin/containerd). 2.x reads a version 3 config, 1.6 a version 2 one.
#
#   source scripts/lib/testenv.sh
#   env_start                     # sets TE_DIR, TE_REGISTRY, TE_DEDUP_SOCK, TE_CTRD_SOCK, ...; arms the EXIT trap
#   ctr_ images pull --plain-http --snapshotter=dedup "$TE_REGISTRY/x:latest"
#   dedupctl_ stats
#   env_stop                      # optional: the EXIT trap runs it anyway
#
# Teardown removes the tasks, containers and images made in this containerd, stops only the processes this
# library started (by PID, checked against /proc/PID/cmdline: SIGTERM, then SIGKILL), unmounts whatever is
# still mounted below the temp dir (deepest first, lazily) and deletes the dir, so a failed run never poisons
# the next. Environment: DEDUP_BIN (launchers, default the checkout's bin/), TE_NS (default namespace),
# TE_TMPDIR (where the temp dir goes, default /tmp), DEDUP_KEEP=1 (keep the temp dir for a post-mortem),
# TE_KEEP_LOGS=DIR (copy the component logs there at teardown; a failed run keeps them in /tmp anyway);
# the array TE_DAEMON_ARGS adds flags to the daemon's command line (e.g. --config FILE); TE_CONTAINERD (above);
# DEDUP_TOOLS (where the Go-built tools are, default the checkout's build/tools, as scripts/go-tools.sh).
# After env_start: TE_CTRD_VERSION (e.g. 2.4.2, or 1.6), TE_CTRD_BIN_DIR (its containerd, ctr and shim).
[ -n "${_TE_LOADED:-}" ] && return 0
_TE_LOADED=1

TE_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEDUP_BIN=${DEDUP_BIN:-$TE_TOP/bin}
TE_NS=${TE_NS:-dedup}
TE_TOOLS=${DEDUP_TOOLS:-$TE_TOP/build/tools}
TE_DIR=""
TE_PROCS=()        # "name:pid" of every process started here, in start order
_TE_DEFERRED=()    # cleanup commands, run last-in first-out by the EXIT trap
_TE_TRAP_SET=""

te_log() { printf '%s\n' "$*" >&2; }
te_die() { te_log "error: $*"; exit 1; }
te_now() { date +%s.%N; }
# Seconds between two te_now stamps, 2 decimals.
te_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# --------------------------------------------------------------------------------------------- cleanup stack

# One EXIT trap for everything (deferred cleanups, then the environment), installed once.
_te_arm_trap() {
  [ -n "$_TE_TRAP_SET" ] && return 0
  _TE_TRAP_SET=1
  trap '_te_on_exit' EXIT
  # Ctrl-C / kill: turn into an ordinary exit so the EXIT trap tears down.
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

_te_on_exit() {
  local rc=$?
  trap - INT TERM
  te_run_deferred
  env_stop "$rc"
}

# te_defer CMD...: run CMD (a string, eval'd) at exit unless te_undefer pops it first.
te_defer() { _te_arm_trap; _TE_DEFERRED+=("$*"); }
# te_undefer: pop the newest deferred command and run it now (the normal path of a try/finally).
te_undefer() {
  local n=${#_TE_DEFERRED[@]}
  [ "$n" -gt 0 ] || return 0
  local cmd=${_TE_DEFERRED[n-1]}
  unset '_TE_DEFERRED[n-1]'
  _TE_DEFERRED=("${_TE_DEFERRED[@]}")
  eval "$cmd"
}
te_run_deferred() {
  while [ ${#_TE_DEFERRED[@]} -gt 0 ]; do te_undefer || true; done
}

# --------------------------------------------------------------------------------------------- processes

# te_spawn NAME CMD...: starts CMD in its own session (so a Ctrl-C reaches only us, and teardown keeps its
# order), output to $TE_DIR/NAME.log; records its PID in TE_PROCS and TE_SPAWNED (not printed: a $(...)
# subshell would lose the record).
te_spawn() {
  local name=$1; shift
  local pidfile="$TE_DIR/$name.pid"
  rm -f "$pidfile"
  # sh writes its own PID, then execs CMD in place: the recorded PID is CMD's, whether setsid forked or not.
  # shellcheck disable=SC2016  # $$ and $@ are for that sh
  setsid sh -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >"$TE_DIR/$name.log" 2>&1 </dev/null &
  local i
  for i in $(seq 100); do [ -s "$pidfile" ] && break; sleep 0.05; done
  [ -s "$pidfile" ] || te_die "$name: could not start: $*"
  TE_SPAWNED=$(cat "$pidfile")
  TE_PROCS+=("$name:$TE_SPAWNED")
}

# te_pid NAME: the PID recorded for NAME (empty if none).
te_pid() {
  local p
  for p in "${TE_PROCS[@]}"; do [ "${p%%:*}" = "$1" ] && echo "${p#*:}"; done | tail -n 1
}

# True while PID runs and still is ours (its command line mentions our temp dir: guards against PID reuse).
_te_ours() {
  local pid=$1
  [ -n "$pid" ] && [ -n "$TE_DIR" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "$TE_DIR"
}

# True when PID is no longer ours, twice 0.2 s apart: while a process execs, its command line reads empty for a
# moment (a containerd just spawned was once taken for dead that way).
_te_gone() {
  _te_ours "$1" && return 1
  sleep 0.2
  ! _te_ours "$1"
}

# te_stop_pid NAME PID GRACE_SECONDS: SIGTERM, wait, then SIGKILL. Only if the PID is still ours.
te_stop_pid() {
  local name=$1 pid=$2 grace=$3 i
  _te_ours "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do _te_ours "$pid" || return 0; sleep 0.1; done
  te_log "testenv: $name ($pid) ignored SIGTERM for ${grace}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do _te_ours "$pid" || return 0; sleep 0.1; done
  te_log "testenv: $name ($pid) is still there after SIGKILL"
}

_TE_TAILS_SHOWN=""
te_log_tail() { # NAME [LINES]
  local f="$TE_DIR/$1.log"
  [ -f "$f" ] || return 0
  _TE_TAILS_SHOWN=1
  te_log "----- last ${2:-25} lines of $f -----"
  tail -n "${2:-25}" "$f" >&2
  te_log "-----"
}

# te_wait_unix_socket NAME PID SOCKET TIMEOUT: until something accepts connections on SOCKET.
# curl exits 7 when it cannot connect; anything else means a listener answered (even if not in HTTP/1).
te_wait_unix_socket() {
  local name=$1 pid=$2 sock=$3 timeout=$4 t0=$SECONDS rc
  while :; do
    if [ -S "$sock" ]; then
      rc=0; curl -s -o /dev/null --max-time 2 --unix-socket "$sock" http://localhost/ || rc=$?
      [ "$rc" -ne 7 ] && return 0
    fi
    if _te_gone "$pid"; then te_log_tail "$name"; te_die "$name exited before listening on $sock"; fi
    if ((SECONDS - t0 > timeout)); then te_log_tail "$name"; te_die "$name did not listen on $sock within ${timeout}s"; fi
    sleep 0.1
  done
}

# A loopback TCP port nobody listens on (a refused connect means free).
te_free_port() {
  local p i
  for i in $(seq 100); do
    p=$((20000 + RANDOM % 12000))   # below the kernel's ephemeral range (32768+): no client port takes it meanwhile
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  te_die "no free loopback port found"
}

# --------------------------------------------------------------------------------------------- components

env_start_daemon() {
  [ -x "$DEDUP_BIN/dedup-snapshotter" ] || te_die "$DEDUP_BIN/dedup-snapshotter not found: run 'make build' (or set DEDUP_BIN)"
  te_spawn dedup "$DEDUP_BIN/dedup-snapshotter" --root "$TE_DEDUP_ROOT" --address "$TE_DEDUP_SOCK" ${TE_DAEMON_ARGS[@]+"${TE_DAEMON_ARGS[@]}"}
  TE_DEDUP_PID=$TE_SPAWNED
  te_wait_unix_socket dedup "$TE_DEDUP_PID" "$TE_DEDUP_SOCK" 60
}

env_start_registry() {
  local attempt pid t0
  for attempt in 1 2 3; do
    TE_REG_PORT=$(te_free_port)
    cat >"$TE_DIR/registry.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $TE_DIR/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$TE_REG_PORT
EOF
    te_spawn registry docker-registry serve "$TE_DIR/registry.yml"
    pid=$TE_SPAWNED
    t0=$SECONDS
    while _te_ours "$pid" && ((SECONDS - t0 < 30)); do
      if curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$TE_REG_PORT/v2/"; then
        TE_REGISTRY=127.0.0.1:$TE_REG_PORT
        TE_REG_PID=$pid
        return 0
      fi
      sleep 0.1
    done
    te_stop_pid registry "$pid" 5
    te_log "testenv: docker-registry did not come up on port $TE_REG_PORT (attempt $attempt)"
    te_log_tail registry 10
  done
  te_die "docker-registry did not start (log: $TE_DIR/registry.log)"
}

# te_pick_containerd: resolves TE_CONTAINERD into TE_CTRD_VERSION, TE_CTRD_BIN_DIR and TE_CTR (building the 2.x
# tools if they are missing); for 2.x, puts that bin dir first on PATH (containerd finds its own shim there, and
# `ctr` or `containerd` in the calling script, or dedupctl convert --trace, mean this release) and silences
# ctr 2.x's deprecation warnings (on a cgroup v1 host it prints one on every call). Idempotent.
te_pick_containerd() {
  [ -z "${TE_CTRD_VERSION:-}" ] || return 0
  local want=${TE_CONTAINERD:-} v versions
  if [[ $want == 1.6* ]]; then
    TE_CTRD_VERSION=1.6 TE_CTRD_BIN_DIR=/usr/bin
  else
    versions=$(. "$TE_TOP/scripts/lib/go-versions.sh" && echo "$CONTAINERD_2X_VERSIONS")
    for v in $versions; do
      if [ -z "$want" ] || [[ $v == "$want"* ]]; then TE_CTRD_VERSION=$v; break; fi
    done
    [ -n "${TE_CTRD_VERSION:-}" ] || te_die "TE_CONTAINERD=$want is neither 1.6 nor one of the 2.x versions of scripts/lib/go-versions.sh ($versions)"
    TE_CTRD_BIN_DIR=$TE_TOOLS/containerd-$TE_CTRD_VERSION/bin
    if ! _te_has_containerd_bins "$TE_CTRD_BIN_DIR"; then
      te_log "testenv: containerd $TE_CTRD_VERSION is not in $TE_TOOLS: building it (scripts/go-tools.sh)"
      DEDUP_TOOLS=$TE_TOOLS bash "$TE_TOP/scripts/go-tools.sh" || te_die "scripts/go-tools.sh failed: it needs Go >= 1.24 (scripts/install-deps.sh)"
    fi
    export PATH=$TE_CTRD_BIN_DIR:$PATH CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1
  fi
  _te_has_containerd_bins "$TE_CTRD_BIN_DIR" ||
    te_die "containerd $TE_CTRD_VERSION: containerd, ctr or containerd-shim-runc-v2 missing in $TE_CTRD_BIN_DIR (1.6: scripts/install-deps.sh; 2.x: scripts/go-tools.sh)"
  TE_CTR=$TE_CTRD_BIN_DIR/ctr
}
_te_has_containerd_bins() { [ -x "$1/containerd" ] && [ -x "$1/ctr" ] && [ -x "$1/containerd-shim-runc-v2" ]; }

# containerd's config: version 2 for 1.6, version 3 for 2.x, whose proxy plugin exports the daemon's root and
# enables remote-snapshot annotations (the transfer service's pull then passes the layers' annotations to Prepare,
# so converted images pull lazily) and whose transfer service may unpack into dedup as well as overlayfs.
# No CRI (it wants CNI and would start its own work); on 1.6 no snapshotters this machine cannot run (log noise;
# the 2.x build has none of them).
_te_containerd_config() {
  if [ "$TE_CTRD_VERSION" = 1.6 ]; then
    echo 'version = 2'
    echo 'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]'
  else
    echo 'version = 3'
    echo 'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime"]'
  fi
  cat <<EOF
root = "$TE_DIR/containerd/root"
state = "$TE_DIR/containerd/state"
[grpc]
  address = "$TE_CTRD_SOCK"
[ttrpc]
  address = "$TE_CTRD_SOCK.ttrpc"
[debug]
  address = "$TE_DIR/containerd-debug.sock"
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "$TE_DIR/containerd/opt"
[proxy_plugins]
  [proxy_plugins.dedup]
    type = "snapshot"
    address = "$TE_DEDUP_SOCK"
EOF
  [ "$TE_CTRD_VERSION" = 1.6 ] && return 0
  cat <<EOF
    exports = { root = "$TE_DEDUP_ROOT", enable_remote_snapshot_annotations = "true" }
[[plugins."io.containerd.transfer.v1.local".unpack_config]]
  platform = "linux/amd64"
  snapshotter = "overlayfs"
[[plugins."io.containerd.transfer.v1.local".unpack_config]]
  platform = "linux/amd64"
  snapshotter = "dedup"
EOF
}

env_start_containerd() {
  te_pick_containerd
  mkdir -p "$TE_DIR/containerd"
  _te_containerd_config >"$TE_DIR/containerd.toml"
  local pid t0
  te_spawn containerd "$TE_CTRD_BIN_DIR/containerd" --config "$TE_DIR/containerd.toml"
  pid=$TE_SPAWNED
  te_wait_unix_socket containerd "$pid" "$TE_CTRD_SOCK" 60
  t0=$SECONDS
  until "$TE_CTR" --address "$TE_CTRD_SOCK" version >/dev/null 2>&1; do
    if _te_gone "$pid" || ((SECONDS - t0 > 30)); then te_log_tail containerd; te_die "containerd does not answer on $TE_CTRD_SOCK"; fi
    sleep 0.2
  done
  TE_CTRD_PID=$pid
  # containerd's own overlayfs snapshotter keeps its layers here (what the bench and demo compare against)
  TE_OVERLAY_DIR=$TE_DIR/containerd/root/io.containerd.snapshotter.v1.overlayfs
}

# env_start [--no-containerd] [--no-registry]: the whole world, daemon first (containerd dials it lazily anyway).
env_start() {
  local want_ctrd=1 want_reg=1 a
  for a in "$@"; do
    case $a in
      --no-containerd) want_ctrd="" ;;
      --no-registry) want_reg="" ;;
      *) te_die "env_start: unknown option $a" ;;
    esac
  done
  [ "$(id -u)" = 0 ] || te_die "needs root (containerd, mounts)"
  local c
  for c in runc docker-registry curl setsid; do
    command -v "$c" >/dev/null || te_die "$c not found: run scripts/install-deps.sh"
  done
  [ -z "$want_ctrd" ] || te_pick_containerd
  [ -z "$TE_DIR" ] || te_die "env_start: an environment is already running in $TE_DIR"
  _te_arm_trap
  # Short path: unix socket paths must stay under 108 bytes.
  TE_DIR=$(mktemp -d "${TE_TMPDIR:-/tmp}/dedup-env.XXXXXX")
  TE_DEDUP_ROOT=$TE_DIR/dedup-root
  TE_DEDUP_SOCK=$TE_DIR/dedup.sock
  TE_CTRD_SOCK=$TE_DIR/containerd.sock
  te_log "testenv: $TE_DIR"
  env_start_daemon
  [ -z "$want_reg" ] || env_start_registry
  [ -z "$want_ctrd" ] || env_start_containerd
}

# --------------------------------------------------------------------------------------------- clients

# ctr_ ARGS...: this containerd's own ctr, in namespace TE_NS.
ctr_() { "$TE_CTR" --address "$TE_CTRD_SOCK" -n "$TE_NS" "$@"; }
# ctr_ns NAMESPACE ARGS...: the same in another namespace of this containerd.
ctr_ns() { local ns=$1; shift; "$TE_CTR" --address "$TE_CTRD_SOCK" -n "$ns" "$@"; }
dedupctl_() { "$DEDUP_BIN/dedupctl" --address "$TE_DEDUP_SOCK" "$@"; }

# --------------------------------------------------------------------------------------------- teardown

# te_du_bytes DIR: bytes du -sx counts under DIR, without a dedup root's trash/ (removed snapshots' directories the
# daemon deletes in the background: not what the store keeps, and files vanishing under du made it exit 1) and
# pool-lazy/ (a bind mount of pool/, the lazy loader's watched path: the same file, which du would count twice).
te_du_bytes() { { du -sxB1 --exclude="$1/trash" --exclude="$1/pool-lazy" "$1" 2>/dev/null || true; } | cut -f1; }

# Mount points at or below DIR, deepest first (mountinfo escapes spaces etc. as \ooo).
te_mounts_under() {
  awk -v d="$1" '{ mp = $5; gsub(/\\040/, " ", mp); if (mp == d || index(mp, d "/") == 1) print length(mp) "\t" mp }' /proc/self/mountinfo |
    sort -rn | cut -f2-
}

# _te_ctrt SECONDS NAMESPACE ARGS...: ctr with a time limit (teardown must not hang on a wedged daemon).
_te_ctrt() { local t=$1 ns=$2; shift 2; timeout "$t" "$TE_CTR" --address "$TE_CTRD_SOCK" -n "$ns" "$@"; }

# Tasks, containers and images of every namespace of our (private) containerd.
_te_clean_containerd() {
  local ns id ids i
  for ns in $(timeout 20 "$TE_CTR" --address "$TE_CTRD_SOCK" namespaces ls -q 2>/dev/null); do
    for id in $(_te_ctrt 20 "$ns" tasks ls -q 2>/dev/null); do
      _te_ctrt 20 "$ns" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
      for i in $(seq 50); do _te_ctrt 20 "$ns" tasks rm -f "$id" >/dev/null 2>&1 && break; sleep 0.2; done
    done
    ids=$(_te_ctrt 20 "$ns" containers ls -q 2>/dev/null) || true
    # shellcheck disable=SC2086  # one id per word
    [ -z "$ids" ] || _te_ctrt 60 "$ns" containers rm $ids >/dev/null 2>&1 || true
    # --sync: containerd's GC removes the snapshots (ours too) before we stop the daemon
    ids=$(_te_ctrt 20 "$ns" images ls -q 2>/dev/null) || true
    # shellcheck disable=SC2086
    [ -z "$ids" ] || _te_ctrt 300 "$ns" images rm --sync $ids >/dev/null 2>&1 ||
      te_log "testenv: removing the images of namespace $ns failed or timed out"
  done
}

# Shims this containerd started (they run detached from it): only those whose -address is our socket
# (1.6 starts containerd-shim-runc-v2 by name, 2.x by its full path).
_te_our_shims() {
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -qE "^([^ ]*/)?containerd-shim[^ ]* .*-address $TE_CTRD_SOCK " && echo "$pid"
  done
  return 0
}

# env_stop [EXIT_CODE]: idempotent; never fails (it runs from the EXIT trap).
env_stop() {
  local rc=${1:-0}
  [ -n "$TE_DIR" ] || return 0
  local - ; set +e +u   # best effort from here on: every step runs even if an earlier one failed
  local failed=""
  case $rc in
    0) ;;
    130 | 143) te_log "testenv: interrupted" ;;
    *) failed=1 ;;
  esac
  if [ -n "$failed" ] && [ -z "$_TE_TAILS_SHOWN" ]; then
    te_log "testenv: failed (exit $rc); log tails:"
    local n; for n in dedup containerd; do te_log_tail "$n" 15; done   # the registry's log is mostly 404 noise
  fi
  te_log "testenv: tearing down $TE_DIR"
  local ctrd; ctrd=$(te_pid containerd)
  if [ -n "$ctrd" ] && _te_ours "$ctrd"; then _te_clean_containerd; fi
  # containerd first (it would redial the daemon), then its leftover shims, the daemon, the registry
  [ -z "$ctrd" ] || te_stop_pid containerd "$ctrd" 15
  local pid
  for pid in $(_te_our_shims); do
    te_log "testenv: stopping leftover shim $pid"
    kill -TERM "$pid" 2>/dev/null; sleep 1; kill -KILL "$pid" 2>/dev/null
  done
  local p
  for p in "${TE_PROCS[@]}"; do
    [ "${p%%:*}" = containerd ] && continue
    te_stop_pid "${p%%:*}" "${p#*:}" 30
  done
  TE_PROCS=()
  # The daemon's fd holder outlives it on purpose (lazy layers stay readable across restarts); its pid file names it.
  local holder
  holder=$(cut -d' ' -f1 "$TE_DEDUP_ROOT/lazy/holder.pid" 2>/dev/null)
  if [ -n "$holder" ] && [ "$(readlink "/proc/$holder/exe" 2>/dev/null | xargs -r basename)" = dedup-fdholder ]; then
    kill -KILL "$holder" 2>/dev/null
  fi
  # The daemon leaves its layer mounts for running containers on purpose; nothing runs any more, so unmount.
  local m _
  for _ in 1 2 3; do
    local left; left=$(te_mounts_under "$TE_DIR")
    [ -n "$left" ] || break
    while IFS= read -r m; do umount -l "$m" 2>/dev/null || te_log "testenv: umount -l $m failed"; done <<<"$left"
  done
  [ -z "$(te_mounts_under "$TE_DIR")" ] || te_log "testenv: mounts left under $TE_DIR: $(te_mounts_under "$TE_DIR" | tr '\n' ' ')"
  if [ -n "${TE_KEEP_LOGS:-}" ]; then
    mkdir -p "$TE_KEEP_LOGS" && cp "$TE_DIR"/*.log "$TE_KEEP_LOGS"/ 2>/dev/null && te_log "testenv: logs copied to $TE_KEEP_LOGS"
  fi
  if [ -n "${DEDUP_KEEP:-}" ]; then
    te_log "testenv: kept $TE_DIR (DEDUP_KEEP)"
  else
    if [ -n "$failed" ]; then # keep the logs of a failed run (small) for a post-mortem
      local keep; keep=/tmp/dedup-env-logs.$(basename "$TE_DIR")
      mkdir -p "$keep" && cp "$TE_DIR"/*.log "$keep"/ 2>/dev/null && te_log "testenv: logs kept in $keep"
    fi
    rm -rf --one-file-system "$TE_DIR" || te_log "testenv: could not delete $TE_DIR"
  fi
  TE_DIR=""
  return 0
}
