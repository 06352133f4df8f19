# lib.sh: shared helpers of the multi-process integration scripts (test_leader_kill.sh,
# test_byzantine.sh, test_restart_catchup.sh). Sourced, never run. Real replica processes over
# real TCP on loopback; every process started here is recorded by PID and killed by PID on every
# exit path; every wait is bounded and fails with a message naming what did not happen.
#
# Usage in a script:  . "$(dirname "$0")/lib.sh"; itest_begin NAME "$@"
#   $1 is the trone binary (ctest passes $<TARGET_FILE:trone_cli>). The Byzantine test binary
#   trone-byz is looked up, in order, in $TRONE_BYZ_BIN, in $2, then next to trone (the build
#   puts it there, see tests/integration/byz/CMakeLists.txt). Not $TRONE_BYZ: trone-byz reads
#   that variable as its behaviour.
# The last line a script prints is its result: "PASS name: ..." or "FAIL name: ...". A failed
# run keeps its directory (replica logs r*.log, ops.log, status.json); ITEST_KEEP=1 keeps it
# after a pass too.
set -u

ITEST_NAME=
TRONE=
TRONE_BYZ_BIN=${TRONE_BYZ_BIN:-}
D=
ITEST_PIDS=()   # index: replica id; value: PID of the running replica process, or empty
ITEST_EXTRA=()  # other background processes
ITEST_OPS=0     # control operations that succeeded

itest_cleanup() {
  local p
  for p in "${ITEST_PIDS[@]:-}" "${ITEST_EXTRA[@]:-}"; do
    if [ -n "$p" ]; then
      kill -9 "$p" 2>/dev/null
      wait "$p" 2>/dev/null
    fi
  done
  ITEST_PIDS=()
  ITEST_EXTRA=()
}

# Shows the end of each replica log on stderr, kills everything, prints the result, exits 1.
itest_fail() {
  local f
  for f in "$D"/r*.log; do
    [ -f "$f" ] || continue
    echo "--- last lines of $f" >&2
    tail -n 8 "$f" >&2
  done
  itest_cleanup
  trap - EXIT
  echo "FAIL $ITEST_NAME: $* (logs kept in $D)"
  exit 1
}

itest_pass() {
  itest_cleanup
  trap - EXIT
  if [ -n "${ITEST_KEEP:-}" ]; then
    echo "logs kept in $D (ITEST_KEEP is set)" >&2
  else
    rm -rf "$D"
  fi
  echo "PASS $ITEST_NAME: $*"
  exit 0
}

itest_on_exit() {
  local rc=$?
  itest_cleanup
  echo "FAIL $ITEST_NAME: exited early with status $rc (logs kept in $D)"
}

# itest_begin NAME TRONE_PATH [TRONE_BYZ_PATH]
itest_begin() {
  ITEST_NAME=$1
  local trone=${2:-}
  if [ -z "$trone" ] || [ ! -x "$trone" ]; then
    echo "FAIL $ITEST_NAME: usage: $0 PATH_TO_TRONE [PATH_TO_TRONE_BYZ]" \
      "('$trone' is not an executable)"
    exit 1
  fi
  TRONE=$(cd "$(dirname "$trone")" && pwd)/$(basename "$trone")
  local byz=${TRONE_BYZ_BIN:-${3:-$(dirname "$TRONE")/trone-byz}}
  TRONE_BYZ_BIN=
  [ ! -x "$byz" ] || TRONE_BYZ_BIN=$(cd "$(dirname "$byz")" && pwd)/$(basename "$byz")
  D=$(mktemp -d "${TMPDIR:-/tmp}/trone-$ITEST_NAME.XXXXXX") ||
    { echo "FAIL $ITEST_NAME: mktemp failed"; exit 1; }
  trap itest_on_exit EXIT
  trap 'exit 130' INT TERM
}

itest_need_byz() {
  [ -n "$TRONE_BYZ_BIN" ] || itest_fail "trone-byz not found (set TRONE_BYZ_BIN, pass it as the" \
    "second argument, or build tests/integration/byz so it lands next to $TRONE)"
}

# itest_cluster N: a fresh N-replica BFT cluster on loopback in $D/c.
itest_cluster() {
  "$TRONE" init "$D/c" --replicas "$1" --force >"$D/init.log" 2>&1 ||
    itest_fail "trone init failed: $(tail -n 1 "$D/init.log")"
  export TRONE_CLUSTER=$D/c/cluster.conf
  ITEST_N=$1
}

# itest_start I [VAR=VALUE ...] [-- BINARY]: starts replica I (default binary: trone) with the
# given environment, appending to $D/rI.log.
itest_start() {
  local i=$1 bin=$TRONE
  shift
  local envs=()
  while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then bin=$2; break; fi
    envs+=("$1")
    shift
  done
  [ -z "${ITEST_PIDS[$i]:-}" ] || itest_fail "replica $i started twice"
  echo "=== start $(date +%T.%N) $bin" >>"$D/r$i.log"
  env "${envs[@]}" "$bin" replica --id "$i" >>"$D/r$i.log" 2>&1 &
  ITEST_PIDS[$i]=$!
}

# itest_kill I: SIGKILL replica I and reap it.
itest_kill() {
  local p=${ITEST_PIDS[$1]:-}
  [ -n "$p" ] || itest_fail "replica $1 is not running"
  kill -9 "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  ITEST_PIDS[$1]=
  echo "=== killed $(date +%T.%N)" >>"$D/r$1.log"
}

# itest_alive I: true while replica I's process is running (not a zombie).
itest_alive() {
  local p=${ITEST_PIDS[$1]:-}
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ "$(ps -o stat= -p "$p" | cut -c1)" != Z ]
}

# itest_status: one line per replica that answered: "id view leader changing executed checkpoint
# digest npeers", from `trone status --json`, into $D/status.txt (and stdout).
itest_status() {
  timeout 15 "$TRONE" status --json --timeout 3 >"$D/status.json" 2>"$D/status.err"
  /usr/bin/python3 -c '
import json, sys
try:
    rows = json.load(open(sys.argv[1]))
except Exception:
    sys.exit(0)
for r in rows:
    if r.get("reachable") and "digest" in r:
        print(r["id"], r["view"], r["leader"], int(bool(r["view_changing"])), r["executed"],
              r["checkpoint"], r["digest"], len(r.get("peers", [])))
' "$D/status.json" | tee "$D/status.txt"
}

# itest_field ID COLUMN: a column of replica ID's line in $D/status.txt (2 view, 3 leader,
# 4 changing, 5 executed, 6 checkpoint, 7 digest, 8 peers); empty if it did not answer.
itest_field() {
  awk -v id="$1" -v col="$2" '$1 == id { print $col }' "$D/status.txt"
}

# itest_wait_ready IDS...: until every listed replica answers status and has sessions with
# every other listed replica (at most 30 s).
itest_wait_ready() {
  local t i ok want=$(($# - 1))
  for t in $(seq 1 60); do
    itest_status >/dev/null
    ok=1
    for i in "$@"; do
      [ "$(itest_field "$i" 8)" != "" ] && [ "$(itest_field "$i" 8)" -ge "$want" ] || ok=0
    done
    [ $ok = 1 ] && return 0
    sleep 0.5
  done
  itest_fail "replicas $* not all up and connected after 30 s: $(tr '\n' ';' <"$D/status.txt")"
}

# itest_converged IDS...: true when every listed replica answered with the same digest, the same
# executed seq and the same view, not changing view.
itest_converged() {
  itest_status >/dev/null
  local i d0 e0 v0
  d0=$(itest_field "$1" 7); e0=$(itest_field "$1" 5); v0=$(itest_field "$1" 2)
  [ -n "$d0" ] || return 1
  for i in "$@"; do
    [ "$(itest_field "$i" 7)" = "$d0" ] && [ "$(itest_field "$i" 5)" = "$e0" ] &&
      [ "$(itest_field "$i" 2)" = "$v0" ] && [ "$(itest_field "$i" 4)" = 0 ] || return 1
  done
  return 0
}

# itest_wait_converged SECONDS IDS...: bounded wait for itest_converged.
itest_wait_converged() {
  local secs=$1 t
  shift
  for t in $(seq 1 $((secs * 2))); do
    itest_converged "$@" && return 0
    sleep 0.5
  done
  itest_fail "replicas $* did not converge within $secs s (id view leader changing executed" \
    "checkpoint digest peers): $(tr '\n' ';' <"$D/status.txt")"
}

# itest_op ARGS...: runs `trone ARGS --timeout 30`, retried up to 3 more times. An attempt that
# timed out may still have been ordered, so a retry that finds the work done ("already exists",
# "already registered") counts as success. Fails the test if no attempt succeeds.
itest_op() {
  local attempt out
  for attempt in 1 2 3 4; do
    out=$(timeout 45 "$TRONE" "$@" --timeout 30 2>&1)
    local rc=$?
    echo "op[$attempt] trone $* -> rc=$rc $out" >>"$D/ops.log"
    if [ $rc = 0 ]; then
      ITEST_OPS=$((ITEST_OPS + 1))
      return 0
    fi
    if [ "$attempt" -gt 1 ] && echo "$out" | grep -qE 'already (exists|registered)'; then
      ITEST_OPS=$((ITEST_OPS + 1))
      return 0
    fi
    sleep 1
  done
  itest_fail "trone $* failed 4 times; last: $(echo "$out" | tail -n 1)"
}

# itest_key NAME: a client identity in $D/NAME.key.
itest_key() {
  "$TRONE" keygen "$1" --out "$D/$1.key" >>"$D/ops.log" 2>&1 ||
    itest_fail "trone keygen $1 failed: $(tail -n 1 "$D/ops.log")"
}

# itest_check_channels TAG...: `trone channel list` shows every tag.
itest_check_channels() {
  local out tag
  out=$(timeout 45 "$TRONE" channel list --json --timeout 30 2>&1) ||
    itest_fail "trone channel list failed: $(echo "$out" | tail -n 1)"
  for tag in "$@"; do
    echo "$out" | grep -qF "\"tag\":\"$tag\"" ||
      itest_fail "trone channel list misses channel $tag"
  done
}

# itest_leader IDS...: the leader most of the listed replicas report (empty if none answered).
itest_leader() {
  itest_status >/dev/null
  local i
  for i in "$@"; do itest_field "$i" 3; done | sort | uniq -c | sort -rn |
    awk 'NR == 1 { print $2 }'
}

# itest_start_replicas N [ARGS...]: starts replicas 0..N-1 with extra `trone replica` ARGS and
# waits until they are all up and connected.
itest_start_replicas() {
  local n=$1 i
  shift
  for i in $(seq 0 $((n - 1))); do
    "$TRONE" replica --id "$i" "$@" >>"$D/r$i.log" 2>&1 &
    ITEST_PIDS[$i]=$!
  done
  itest_wait_ready $(seq 0 $((n - 1)))
}

# itest_stopped_burst LO HI LO_N HI_N: one `trone sub LO HI --json` (output $D/sub.out,
# $D/sub.err, pid ITEST_SUB) attaches and is stopped (SIGSTOP); the admin publishes LO_N events
# of about 1 KiB on LO ("L-000001-xxx..."), then HI_N on HI ("H-000001"); the subscriber
# resumes (SIGCONT). For the urgency and flow-control tests.
itest_stopped_burst() {
  local lo=$1 hi=$2 lo_n=$3 hi_n=$4 t
  TRONE_LOG=info "$TRONE" sub "$lo" "$hi" --json --timeout 300 >"$D/sub.out" 2>"$D/sub.err" &
  ITEST_SUB=$!
  ITEST_EXTRA+=("$ITEST_SUB")
  for t in $(seq 1 60); do
    grep -q "msg=\"attached\" tag=$lo " "$D/sub.err" &&
      grep -q "msg=\"attached\" tag=$hi " "$D/sub.err" && break
    kill -0 "$ITEST_SUB" 2>/dev/null || itest_fail "trone sub exited: $(tail -n 1 "$D/sub.err")"
    [ "$t" -lt 60 ] || itest_fail "trone sub not attached after 30 s: $(tail -n 1 "$D/sub.err")"
    sleep 0.5
  done
  sleep 1 # the log says n-f replicas attached; let the last one attach too
  kill -STOP "$ITEST_SUB"
  local pad
  pad=$(printf 'x%.0s' $(seq 1 1000))
  awk -v n="$lo_n" -v pad="$pad" 'BEGIN { for (i = 1; i <= n; i++) printf "L-%06d-%s\n", i, pad }' \
    >"$D/lo.in"
  awk -v n="$hi_n" 'BEGIN { for (i = 1; i <= n; i++) printf "H-%06d\n", i }' >"$D/hi.in"
  timeout 120 "$TRONE" pub "$lo" <"$D/lo.in" >"$D/pub.lo" 2>&1 ||
    { kill -CONT "$ITEST_SUB"; itest_fail "pub $lo failed: $(tail -n 1 "$D/pub.lo")"; }
  timeout 60 "$TRONE" pub "$hi" <"$D/hi.in" >"$D/pub.hi" 2>&1 ||
    { kill -CONT "$ITEST_SUB"; itest_fail "pub $hi failed: $(tail -n 1 "$D/pub.hi")"; }
  kill -CONT "$ITEST_SUB"
}
