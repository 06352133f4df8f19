#!/usr/bin/env bash
# test_restart_catchup.sh: a replica that was down catches up from its peers, by both paths of
# docs/PROTOCOL.md section 5. Replicas keep no state on disk yet, so a restarted replica starts
# empty and must learn everything the others executed.
# 1. DECIDED path: replica 3 is killed after a few operations and misses a few more; no stable
#    checkpoint exists yet (checkpoint 0 everywhere), so its peers can still send every decided
#    batch. After the restart it must reach the same executed seq and table digest without
#    installing a state snapshot.
# 2. State transfer: replica 3 is killed again and the others run more operations than one
#    checkpoint interval (64, the core's default; `trone replica` has no flag for it) until their
#    stable checkpoint passes what 3 had, plus a few more. After the restart 3 must log that it
#    installed a checkpoint from its peers and reach the same executed seq and digest.
# Finally all 4 order one more operation together.
# Usage: test_restart_catchup.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin restart_catchup "$@"

INTERVAL=64
OPS_MAX=300 # bound on the operations phase 2 may need to pass a checkpoint
TAGS=()

create() {
  itest_op channel create "$1"
  TAGS+=("$1")
}

itest_cluster 4
for i in 0 1 2 3; do itest_start $i; done
itest_wait_ready 0 1 2 3

# Phase 1: a few operations missed, caught up by DECIDED.
for i in 1 2 3; do create "rc.a$i"; done
itest_kill 3
for i in 1 2 3 4 5; do create "rc.b$i"; done
itest_wait_converged 30 0 1 2
[ "$(itest_field 0 6)" = 0 ] || itest_fail "a checkpoint is already stable after phase 1's" \
  "$(itest_field 0 5) seqs (this phase needs none)"
executed1=$(itest_field 0 5)
itest_start 3
itest_wait_ready 0 1 2 3
itest_wait_converged 60 0 1 2 3
if grep -q 'state installed' "$D/r3.log"; then
  itest_fail "replica 3 installed a snapshot although no checkpoint existed (expected DECIDED)"
fi

# Phase 2: more than a checkpoint interval missed, caught up by state transfer.
itest_kill 3
marker=$(wc -l <"$D/r3.log")
passed=0
for n in $(seq 1 $OPS_MAX); do
  create "rc.c$n"
  if [ $((n % 16)) = 0 ] && [ $n -ge $INTERVAL ]; then
    itest_status >/dev/null
    ckpt=$(itest_field 0 6)
    if [ -n "$ckpt" ] && [ "$ckpt" -gt "$executed1" ]; then
      passed=1
      break
    fi
  fi
done
[ $passed = 1 ] || itest_fail "no stable checkpoint above $executed1 after $OPS_MAX operations"
# A few more past the checkpoint, which the restarted replica gets as DECIDED after the state.
for i in 1 2 3; do create "rc.d$i"; done
itest_wait_converged 30 0 1 2
executed2=$(itest_field 0 5)
ckpt=$(itest_field 0 6)
[ "$executed2" -gt "$ckpt" ] || itest_fail "executed $executed2 is not above checkpoint $ckpt"
itest_start 3
itest_wait_ready 0 1 2 3
itest_wait_converged 90 0 1 2 3
tail -n +"$((marker + 1))" "$D/r3.log" | grep -q 'msg="state installed from peers"' ||
  itest_fail "replica 3 caught up without logging a state transfer (checkpoint $ckpt)"

# Everyone, the restarted replica included, orders one more operation.
create rc.final
itest_wait_converged 60 0 1 2 3
itest_check_channels "${TAGS[@]}"
for i in 0 1 2 3; do itest_alive $i || itest_fail "replica $i died"; done
itest_pass "replica 3 caught up by DECIDED (seq $executed1, no checkpoint) and by state" \
  "transfer (checkpoint $ckpt, seq $executed2); $ITEST_OPS operations, one digest on 4 replicas"
