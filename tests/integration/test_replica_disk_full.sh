#!/usr/bin/env bash
# test_replica_disk_full.sh: a replica whose disk fills up stops rather than send votes it has
# not persisted, says why, and resumes from its intact store once space is freed (issue 4,
# docs/PROTOCOL.md sections 9-10). Replica 3 of a 4-replica BFT cluster keeps its data
# directory on a 128 KiB tmpfs mounted by this test (skipped where mounting is not allowed).
# Operations run until replica 3 exits: its status must be 3 and its log must name the full
# disk; the other three keep ordering. The tmpfs is then grown (remount keeps its files) and
# replica 3, restarted, restores from its store and converges with the others.
# Usage: test_replica_disk_full.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin replica_disk_full "$@"

MNT=$D/small
OPS_MAX=600
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=128k tmpfs "$MNT" 2>"$D/mount.err"; then
  itest_cleanup
  trap - EXIT
  rm -rf "$D"
  echo "SKIP replica_disk_full: cannot mount a tmpfs here ($(head -n 1 "$D/mount.err" 2>/dev/null))"
  exit 0
fi
unmount() {
  umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
}
# Every exit path of the library (pass, fail, early exit) runs itest_cleanup: unmount there too,
# after the processes using the tmpfs are killed.
eval "$(declare -f itest_cleanup | sed '1s/itest_cleanup/itest_cleanup_lib/')"
itest_cleanup() {
  itest_cleanup_lib
  unmount
}

itest_cluster 4
for i in 0 1 2; do itest_start $i; done
env "$TRONE" replica --id 3 --data "$MNT/replica-3" >>"$D/r3.log" 2>&1 &
ITEST_PIDS[3]=$!
itest_wait_ready 0 1 2 3

full=0
for n in $(seq 1 $OPS_MAX); do
  itest_op channel create "full.c$n"
  if ! kill -0 "${ITEST_PIDS[3]}" 2>/dev/null; then
    full=$n
    break
  fi
done
[ $full != 0 ] || itest_fail "replica 3 still runs after $OPS_MAX operations on a 128 KiB disk"
wait "${ITEST_PIDS[3]}"
status=$?
ITEST_PIDS[3]=
[ $status = 3 ] || itest_fail "replica 3 exited with status $status, not 3 (cannot persist)"
grep -q 'cannot persist the replication state.*TRONE_EFULL' "$D/r3.log" ||
  itest_fail "replica 3's log does not report the full disk"
for n in 1 2 3; do itest_op channel create "full.after$n"; done
itest_wait_converged 30 0 1 2

mount -o remount,size=8m "$MNT" || itest_fail "cannot grow the tmpfs"
marker=$(wc -l <"$D/r3.log")
env "$TRONE" replica --id 3 --data "$MNT/replica-3" >>"$D/r3.log" 2>&1 &
ITEST_PIDS[3]=$!
itest_wait_ready 0 1 2 3
itest_wait_converged 60 0 1 2 3
tail -n +"$((marker + 1))" "$D/r3.log" | grep -q 'restored checkpoint' ||
  itest_fail "replica 3 did not restore from its store after the disk was grown"
itest_op channel create full.final
itest_wait_converged 30 0 1 2 3
itest_pass "replica 3 stopped with status 3 on a full disk after $full operations, the others" \
  "went on, and it resumed from its intact store once space was freed"
