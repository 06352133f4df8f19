#!/usr/bin/env bash
# test_shared_key.sh: several processes using one key at once (docs/PROTOCOL.md 4: the
# replicas execute the requests of one key in any id order, each once). Four real replicas.
# Two `trone pub` processes with the admin key publish on a bft,total channel (each sends its
# ORDERs through the replication protocol as that key) while `trone channel create` runs with
# the same key, again and again, and a third process publishes on a FIFO channel.
# Passes when every control operation succeeds (before, one came back "refused as stale: the
# operation may or may not have been applied" whenever a publisher's ORDER ran first), every
# publisher exits 0, and the subscriber gets every event once, in one total order, each
# publisher's in its own order.
# Usage: test_shared_key.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin shared_key "$@"

N=400
CREATES=12

itest_cluster 4
for i in 0 1 2 3; do itest_start $i; done
itest_wait_ready 0 1 2 3
itest_op channel create k.tot --class bft,total,si
itest_op channel create k.fifo --class cft,fifo,si

timeout 120 "$TRONE" sub k.tot --count $((2 * N)) --timeout 90 >"$D/sub.out" 2>"$D/sub.err" &
SUB=$!
ITEST_EXTRA+=("$SUB")
for t in $(seq 1 60); do
  grep -q 'msg="attached"' "$D/sub.err" && break
  [ "$t" -lt 60 ] || itest_fail "trone sub not attached after 30 s: $(tail -n 1 "$D/sub.err")"
  sleep 0.5
done

seq 1 $N | sed 's/^/A-/' >"$D/a.in"
seq 1 $N | sed 's/^/B-/' >"$D/b.in"
seq 1 $N | sed 's/^/F-/' >"$D/f.in"
# Lines fed 20 at a time, 50 ms apart: the publishers send ORDERs for the whole time the
# control commands run (a burst would be over before the first command started).
feed() { awk '{ print; fflush() } NR % 20 == 0 { system("sleep 0.05") }' "$1"; }
pids=()
for who in a b; do
  feed "$D/$who.in" | timeout 120 "$TRONE" pub k.tot >"$D/pub.$who" 2>&1 &
  pids+=($!)
  ITEST_EXTRA+=($!)
done
feed "$D/f.in" | timeout 120 "$TRONE" pub k.fifo >"$D/pub.f" 2>&1 &
pids+=($!)
ITEST_EXTRA+=($!)

# The control commands take the key's lock among themselves, not against the publishers.
for k in $(seq 1 $CREATES); do
  out=$(timeout 60 "$TRONE" channel create "k.extra$k" --class cft --timeout 30 2>&1) ||
    itest_fail "channel create k.extra$k with the publishers' key failed: $out"
done

for p in "${pids[@]}"; do
  wait "$p" || itest_fail "a publisher failed: $(tail -q -n 1 "$D"/pub.*)"
done
wait "$SUB" || itest_fail "trone sub failed: $(tail -n 1 "$D/sub.err")"

[ "$(grep -c '^A-' "$D/sub.out")" = "$N" ] && [ "$(grep -c '^B-' "$D/sub.out")" = "$N" ] ||
  itest_fail "the subscriber got $(grep -c '^A-' "$D/sub.out") A and" \
    "$(grep -c '^B-' "$D/sub.out") B events, want $N each"
[ "$(grep '^A-' "$D/sub.out")" = "$(cat "$D/a.in")" ] || itest_fail "A's events out of order"
[ "$(grep '^B-' "$D/sub.out")" = "$(cat "$D/b.in")" ] || itest_fail "B's events out of order"
list=$(timeout 60 "$TRONE" channel list --timeout 30 2>&1) || itest_fail "channel list: $list"
made=$(echo "$list" | grep -c 'k\.extra')
[ "$made" = "$CREATES" ] || itest_fail "$made of $CREATES channels created"

itest_pass "3 publishers and $CREATES channel creates with one key at once: every operation" \
  "succeeded, $((2 * N)) total-order events once and in order"
