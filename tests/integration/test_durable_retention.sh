#!/usr/bin/env bash
# test_durable_retention.sh: retention of durable channels (issue 4, docs/PROTOCOL.md 11).
# Four real replicas. A channel with retain-bytes=4K keeps only the newest events of its
# stream, a channel with retain=2s only those younger than two seconds; both are enforced by
# every replica in small steps while traffic goes on (the publishers never wait). A subscriber
# from position 0 then gets a clear retention report and exactly the kept events, in order;
# `trone channel show` shows the limits; retention items without durable are refused.
# Usage: test_durable_retention.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin durable_retention "$@"

itest_cluster 4
for i in 0 1 2 3; do itest_start $i; done
itest_wait_ready 0 1 2 3
itest_op channel create dur.size --class cft,fifo,durable,retain-bytes=4K
itest_op channel create dur.age --class bft,fifo,durable,retain=2s

out=$(timeout 60 "$TRONE" channel show dur.size --timeout 30 2>&1) ||
  itest_fail "channel show failed: $out"
echo "$out" | grep -q "retain-bytes=4K" || itest_fail "channel show lacks retain-bytes=4K: $out"
out=$(timeout 60 "$TRONE" channel show dur.age --timeout 30 2>&1)
echo "$out" | grep -q "retain=2s" || itest_fail "channel show lacks retain=2s: $out"
out=$(timeout 60 "$TRONE" channel create bad.retain --class cft,retain=1d --timeout 30 2>&1) &&
  itest_fail "retain without durable was accepted"
echo "$out" | grep -q "durable" || itest_fail "refusal of retain without durable unclear: $out"

# 100-byte payloads are stored as 162 bytes (publisher key, seq, times, lengths): 4K keeps the
# newest 25 of 300.
line() { printf 'event-%04d-%s\n' "$1" "$(printf 'x%.0s' $(seq 1 89))"; }
for k in $(seq 1 300); do line "$k"; done | timeout 60 "$TRONE" pub dur.size >"$D/pub1.log" 2>&1 ||
  itest_fail "pub dur.size failed: $(tail -n 1 "$D/pub1.log")"
for k in $(seq 1 50); do echo "old-$k"; done | timeout 60 "$TRONE" pub dur.age >"$D/pub2.log" 2>&1 ||
  itest_fail "pub dur.age failed: $(tail -n 1 "$D/pub2.log")"
sleep 4 # at least two retention ticks after the old events turned 2 s old
for k in $(seq 1 10); do echo "new-$k"; done | timeout 60 "$TRONE" pub dur.age >"$D/pub3.log" 2>&1 ||
  itest_fail "second pub dur.age failed"

timeout 60 "$TRONE" sub dur.age --from 0 --count 10 --timeout 30 >"$D/age" 2>"$D/age.err" ||
  itest_fail "sub dur.age --from 0 failed: $(tail -n 1 "$D/age.err")"
[ "$(cat "$D/age")" = "$(seq 1 10 | sed 's/^/new-/')" ] ||
  itest_fail "retain=2s replayed $(head -n 3 "$D/age" | tr '\n' ' ')... not new-1..new-10"
# The old epoch's stream is gone whole: nothing of it may come (one event more times out).
timeout 30 "$TRONE" sub dur.age --from 0 --count 11 --timeout 4 >"$D/age2" 2>/dev/null
grep -q old- "$D/age2" && itest_fail "an event older than retain=2s was replayed"

timeout 60 "$TRONE" sub dur.size --from 0 --count 20 --timeout 30 >"$D/size" 2>"$D/size.err" ||
  itest_fail "sub dur.size --from 0 failed: $(tail -n 1 "$D/size.err")"
grep -q "no longer kept" "$D/size.err" ||
  itest_fail "no retention report on stderr: $(tail -n 2 "$D/size.err")"
first=$(head -n 1 "$D/size" | cut -c7-10)
first=$((10#$first))
[ "$first" -ge 270 ] && [ "$first" -le 281 ] ||
  itest_fail "retain-bytes=4K (25 stored events of 162 bytes) replays from event $first"
want=$(for k in $(seq "$first" $((first + 19))); do line "$k"; done)
[ "$(cat "$D/size")" = "$want" ] || itest_fail "retain-bytes replay is not consecutive from $first"

itest_pass "retain-bytes=4K kept events $first..300, retain=2s only the young ones; reported"
