#!/usr/bin/env bash
# test_durable_disk_full.sh: a full disk refuses durable events without stopping anything else
# or damaging the store (issue 4, docs/PROTOCOL.md section 11). The four replicas of a CFT
# cluster keep their data directories on one 16 MiB tmpfs mounted by this test (skipped where
# mounting is not allowed). A publisher sends 4 KiB events on a durable channel until the
# replicas refuse them: `trone pub` must exit 1 naming the full disk and counting the events not
# acknowledged; each replica logs the refusal once, keeps running, keeps ordering control
# operations and forwarding a non-durable channel. The tmpfs is then grown: durable events are
# accepted again, and a replay from position 0 gives exactly what was acknowledged, in order.
# Usage: test_durable_disk_full.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin durable_disk_full "$@"

MNT=$D/small
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=16m tmpfs "$MNT" 2>"$D/mount.err"; then
  itest_cleanup
  trap - EXIT
  rm -rf "$D"
  echo "SKIP durable_disk_full: cannot mount a tmpfs here ($(head -n 1 "$D/mount.err" 2>/dev/null))"
  exit 0
fi
unmount() {
  umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
}
eval "$(declare -f itest_cleanup | sed '1s/itest_cleanup/itest_cleanup_lib/')"
itest_cleanup() {
  itest_cleanup_lib
  unmount
}

"$TRONE" init "$D/c" --replicas 4 --fault-model cft --force >"$D/init.log" 2>&1 ||
  itest_fail "trone init failed: $(tail -n 1 "$D/init.log")"
export TRONE_CLUSTER=$D/c/cluster.conf
start() {
  env "$TRONE" replica --id "$1" --data "$MNT/replica-$1" >>"$D/r$1.log" 2>&1 &
  ITEST_PIDS[$1]=$!
}
for i in 0 1 2 3; do start $i; done
itest_wait_ready 0 1 2 3
itest_op channel create dur.big --class cft,fifo,durable
itest_op channel create plain --class cft,fifo

# 4 KiB events until refused: 16 MiB shared by four stores holds well under 1000 of them.
payload=$(head -c 4000 /dev/zero | tr '\0' 'x')
for k in $(seq 1 3000); do echo "event-$k-$payload"; done |
  timeout 120 "$TRONE" pub dur.big --timeout 20 >"$D/pub.log" 2>&1
rc=$?
[ $rc = 1 ] || itest_fail "pub on a full disk exited $rc, not 1: $(tail -n 1 "$D/pub.log")"
grep -q "no space left" "$D/pub.log" || itest_fail "pub did not name the full disk: $(tail -n 1 "$D/pub.log")"
grep -qE "[0-9]+ of [0-9]+ events read not acknowledged" "$D/pub.log" ||
  itest_fail "pub did not count the unacknowledged events: $(tail -n 1 "$D/pub.log")"

for i in 0 1 2 3; do
  itest_alive $i || itest_fail "replica $i stopped on a full disk: $(tail -n 2 "$D/r$i.log")"
  n=$(grep -c 'disk or store full: refusing durable events' "$D/r$i.log")
  [ "$n" -le 1 ] || itest_fail "replica $i logged the full disk $n times (want once)"
done
[ "$(cat "$D"/r*.log | grep -c 'disk or store full')" -ge 2 ] ||
  itest_fail "fewer than f+1 replicas logged the full disk"

# Everything else goes on: control operations, and a channel that keeps nothing.
itest_op channel create after.full
timeout 60 "$TRONE" sub plain --count 3 --timeout 30 >"$D/plain" 2>"$D/plain.err" &
SUB=$!
ITEST_EXTRA+=("$SUB")
sleep 2
printf 'p1\np2\np3\n' | timeout 60 "$TRONE" pub plain >"$D/pubp.log" 2>&1 ||
  itest_fail "pub on a non-durable channel failed on a full disk: $(tail -n 1 "$D/pubp.log")"
wait "$SUB" || itest_fail "sub on a non-durable channel failed: $(tail -n 1 "$D/plain.err")"
[ "$(cat "$D/plain")" = "$(printf 'p1\np2\np3')" ] || itest_fail "non-durable channel lost events"

# Space returns: durable events are accepted again (the replicas look again every second).
mount -o remount,size=128m "$MNT" || itest_fail "cannot grow the tmpfs"
ok=0
for attempt in 1 2 3 4 5; do
  sleep 1.5
  if printf 'after-1\nafter-2\n' | timeout 60 "$TRONE" pub dur.big --timeout 10 >"$D/pub2.log" 2>&1; then
    ok=1
    break
  fi
done
[ $ok = 1 ] || itest_fail "durable events still refused after the disk was grown: $(tail -n 1 "$D/pub2.log")"
grep -q 'durable events accepted again' "$D"/r0.log "$D"/r1.log "$D"/r2.log "$D"/r3.log ||
  itest_fail "no replica logged that it accepts durable events again"

# The stores are intact: a prefix event-1..event-X of the first publisher, then after-1..2.
timeout 60 "$TRONE" sub dur.big --from 0 --timeout 10 >"$D/replay" 2>"$D/replay.err"
cut -d- -f1-2 "$D/replay" >"$D/replay.short"
x=$(grep -c '^event-' "$D/replay.short")
[ "$x" -ge 1 ] || itest_fail "nothing of the first publisher was replayed"
want=$( (seq 1 "$x" | sed 's/^/event-/'; echo after-1; echo after-2) )
[ "$(cat "$D/replay.short")" = "$want" ] ||
  itest_fail "replay after the full disk is not event-1..event-$x then after-1, after-2"
itest_pass "durable events refused on a full disk after $x were stored (pub exit 1, logged" \
  "once), control and non-durable traffic went on, accepted again once the disk grew"
