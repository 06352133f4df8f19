#!/usr/bin/env bash
# test_durable_total_crash.sh: an acknowledged event of a durable total-order channel survives
# a crash of the whole cluster right after its publisher counted it acknowledged (issue 4,
# docs/PROTOCOL.md 11.1). A replica acknowledges such an event only once it is in its pending
# stream on disk; the ORDER that gives it its position may execute and the publisher exit
# before any replica released the range into the total stream. Four real replicas with data
# directories on disk, a bft,total,durable channel; ROUNDS times: `trone pub` publishes N
# events and exits 0, and in the same instant (no sleep) ALL four replicas are SIGKILLed at
# once, then restarted from their directories; `trone sub --from 0` must print every event
# published so far exactly once, in order. At the end the replicas are stopped and their
# `--dump-events` must each hold every position in the total stream.
# Without the pending stream (main before this test) the first round loses the events of the
# ORDERs that had not been released yet.
# Usage: test_durable_total_crash.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin durable_total_crash "$@"

N=${ITEST_TOTAL_CRASH_N:-600}
ROUNDS=${ITEST_TOTAL_CRASH_ROUNDS:-3}
itest_cluster 4
for i in 0 1 2 3; do itest_start $i; done
itest_wait_ready 0 1 2 3
itest_op channel create dur.total --class bft,total,durable

expect() { seq "$1" "$2" | sed 's/^/event-/'; }

# SIGKILL all four replicas in one kill(1) call, then reap them.
kill_all() {
  local pids=()
  for i in 0 1 2 3; do pids+=("${ITEST_PIDS[$i]}"); done
  kill -9 "${pids[@]}" 2>/dev/null
  for i in 0 1 2 3; do
    wait "${ITEST_PIDS[$i]}" 2>/dev/null
    ITEST_PIDS[$i]=
    echo "=== killed (whole cluster) $(date +%T.%N)" >>"$D/r$i.log"
  done
}

total=0
for round in $(seq 1 "$ROUNDS"); do
  first=$((total + 1))
  total=$((total + N))
  # The kill follows the publisher's exit with nothing in between.
  expect $first $total | timeout 60 "$TRONE" pub dur.total >"$D/pub.$round.log" 2>&1 &&
    kill_all || itest_fail "round $round: trone pub failed: $(tail -n 1 "$D/pub.$round.log")"
  for i in 0 1 2 3; do itest_start $i; done
  itest_wait_ready 0 1 2 3
  timeout 90 "$TRONE" sub dur.total --from 0 --count $total --timeout 30 >"$D/sub.$round" \
    2>"$D/sub.$round.err" ||
    itest_fail "round $round: sub --from 0 got $(wc -l <"$D/sub.$round") of $total events:" \
      "$(tail -n 1 "$D/sub.$round.err")"
  [ "$(cat "$D/sub.$round")" = "$(expect 1 $total)" ] ||
    itest_fail "round $round: sub --from 0 printed $(wc -l <"$D/sub.$round") lines, not" \
      "event-1..event-$total in order, once"
done

# Every replica's total stream holds every position (its own release after the restart, or
# the anti-entropy); pending copies left behind are counted, not required to be gone.
sleep 2
for i in 0 1 2 3; do itest_kill $i; done
pending=""
for i in 0 1 2 3; do
  "$TRONE" replica --id $i --dump-events >"$D/dump.$i" 2>"$D/dump.$i.err" ||
    itest_fail "dump-events of replica $i failed: $(tail -n 1 "$D/dump.$i.err")"
  held=$(grep -c '^dur.total total ' "$D/dump.$i")
  [ "$held" = "$total" ] || itest_fail "replica $i holds $held of $total positions"
  pending="$pending $(grep -c '^dur.total pending ' "$D/dump.$i")"
done

itest_pass "$ROUNDS x $N durable total-order events survived whole-cluster SIGKILLs right after" \
  "the publisher's exit; every replica holds all $total positions (pending left:$pending)"
