#!/usr/bin/env bash
# test_durable_replay.sh: durable channels survive a whole-cluster crash and replay exactly
# (issue 4, docs/PROTOCOL.md section 11). Four real replica processes with their data
# directories on disk; N events are published on a BFT and a CFT durable FIFO channel and on a
# BFT durable total-order channel (positions are the agreed ones there), then
# all four replicas are SIGKILLed and restarted from their directories. Then:
#   - `trone sub --from 0` prints event-1..event-N exactly once, in order (BFT: replayed
#     copies are voted, f+1 matching);
#   - `--from K` prints event-(K+1)..event-N, and nothing more (a subscriber asking for one
#     event too many times out with exactly N-K);
#   - `--since T` prints exactly the events published after T;
#   - a replay that runs while new events are published switches to the live stream with no
#     gap and no duplicate;
#   - `--json` carries the position; `--from` on a channel that is not durable is refused.
# Usage: test_durable_replay.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin durable_replay "$@"

N=400
K=150
itest_cluster 4
for i in 0 1 2 3; do itest_start $i; done
itest_wait_ready 0 1 2 3
itest_op channel create dur.bft --class bft,fifo,durable
itest_op channel create dur.cft --class cft,fifo,durable
itest_op channel create plain.cft --class cft,fifo
itest_op channel create dur.total --class bft,total,durable

# expect FROM TO: the lines event-FROM..event-TO.
expect() { seq "$1" "$2" | sed 's/^/event-/'; }

for tag in dur.bft dur.cft dur.total; do
  expect 1 $N | timeout 60 "$TRONE" pub $tag >"$D/pub.$tag.log" 2>&1 ||
    itest_fail "trone pub $tag failed: $(tail -n 1 "$D/pub.$tag.log")"
done

# The whole cluster crashes and comes back from its disks.
for i in 0 1 2 3; do itest_kill $i; done
for i in 0 1 2 3; do itest_start $i; done
itest_wait_ready 0 1 2 3

for tag in dur.bft dur.cft dur.total; do
  timeout 60 "$TRONE" sub $tag --from 0 --count $N --timeout 40 >"$D/all.$tag" 2>"$D/all.$tag.err" ||
    itest_fail "sub $tag --from 0 failed: $(tail -n 1 "$D/all.$tag.err")"
  [ "$(cat "$D/all.$tag")" = "$(expect 1 $N)" ] ||
    itest_fail "sub $tag --from 0 printed $(wc -l <"$D/all.$tag") lines, not event-1..event-$N"
  timeout 60 "$TRONE" sub $tag --from $K --count $((N - K)) --timeout 40 >"$D/k.$tag" \
    2>"$D/k.$tag.err" || itest_fail "sub $tag --from $K failed: $(tail -n 1 "$D/k.$tag.err")"
  [ "$(cat "$D/k.$tag")" = "$(expect $((K + 1)) $N)" ] ||
    itest_fail "sub $tag --from $K printed $(wc -l <"$D/k.$tag") lines, not event-$((K + 1))..$N"
done

# Nothing beyond what was published, and no duplicate: one event too many times out.
timeout 30 "$TRONE" sub dur.cft --from $K --count $((N - K + 1)) --timeout 4 >"$D/over" 2>"$D/over.err"
[ $? = 1 ] || itest_fail "sub --from $K --count $((N - K + 1)) did not time out"
[ "$(cat "$D/over")" = "$(expect $((K + 1)) $N)" ] ||
  itest_fail "sub --from $K (over-count) printed $(wc -l <"$D/over") lines, not $((N - K))"

# --json carries the position (a FIFO channel's position is the publisher's seq).
timeout 60 "$TRONE" sub dur.bft --from $((N - 1)) --count 1 --timeout 30 --json >"$D/json" \
  2>"$D/json.err" || itest_fail "sub --json failed: $(tail -n 1 "$D/json.err")"
grep -q "\"payload\":\"event-$N\",\"position\":$N" "$D/json" ||
  itest_fail "sub --json did not print position $N: $(head -c 300 "$D/json")"

# --since: only the events published after the boundary.
sleep 1.2
since=$(date +%s.%N)
sleep 0.2
expect $((N + 1)) $((N + 50)) | timeout 60 "$TRONE" pub dur.cft >"$D/pub2.log" 2>&1 ||
  itest_fail "second pub failed: $(tail -n 1 "$D/pub2.log")"
timeout 60 "$TRONE" sub dur.cft --since "$since" --count 50 --timeout 30 >"$D/since" 2>"$D/since.err" ||
  itest_fail "sub --since failed: $(tail -n 1 "$D/since.err")"
[ "$(cat "$D/since")" = "$(expect $((N + 1)) $((N + 50)))" ] ||
  itest_fail "sub --since printed $(wc -l <"$D/since") lines, not the 50 published after it"
iso=$(date -u -d "@${since%.*}" +%Y-%m-%dT%H:%M:%SZ)
timeout 60 "$TRONE" sub dur.cft --since "$iso" --count 50 --timeout 30 >"$D/iso" 2>"$D/iso.err" ||
  itest_fail "sub --since $iso failed: $(tail -n 1 "$D/iso.err")"
[ "$(cat "$D/iso")" = "$(expect $((N + 1)) $((N + 50)))" ] ||
  itest_fail "sub --since $iso printed $(wc -l <"$D/iso") lines"

# Replay then live: a subscriber from 0 while a publisher adds 300 more, 5 ms apart.
M=$((N + 50))
timeout 90 "$TRONE" sub dur.bft --from 0 --count $((M + 300)) --timeout 60 >"$D/live" \
  2>"$D/live.err" &
SUB=$!
ITEST_EXTRA+=("$SUB")
expect $((N + 1)) $M | timeout 60 "$TRONE" pub dur.bft >"$D/pub3.log" 2>&1 ||
  itest_fail "pub dur.bft (second) failed"
expect $((M + 1)) $((M + 300)) | while read -r l; do echo "$l"; sleep 0.005; done |
  timeout 60 "$TRONE" pub dur.bft >"$D/pub4.log" 2>&1 || itest_fail "live pub failed"
wait "$SUB" || itest_fail "replay-then-live subscriber failed: $(tail -n 1 "$D/live.err")"
[ "$(cat "$D/live")" = "$(expect 1 $((M + 300)))" ] ||
  itest_fail "replay then live printed $(wc -l <"$D/live") lines (want $((M + 300)), in order, once)"

# A channel that keeps nothing cannot replay.
out=$(timeout 60 "$TRONE" sub plain.cft --from 0 --count 1 --timeout 20 2>&1); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "not durable" ||
  itest_fail "sub --from on a non-durable channel: rc=$rc $out"
out=$("$TRONE" sub dur.cft --since yesterday 2>&1); rc=$?
[ $rc = 2 ] || itest_fail "sub --since yesterday: rc=$rc (want 2) $out"

itest_pass "$N events on bft, cft and total-order durable channels survived a full-cluster SIGKILL;" \
  "--from 0, --from $K, --since and replay-then-live exact"
