#!/usr/bin/env bash
# test_urgency.sh: the urgency promise end to end with real processes (DESIGN.md 2: at every
# hop, queued events of more urgent channels go first). 4 replicas whose queues per subscriber
# connection hold everything published here (--queue-events/--queue-bytes, so nothing is
# dropped and no gap wait reorders anything); CFT FIFO channels u.lo (urgency 0) and u.hi
# (urgency 7). One `trone sub u.lo u.hi --json` attaches and is then stopped (SIGSTOP); the
# admin publishes LO_N events of about 1 KiB on u.lo, then HI_N on u.hi; the subscriber
# resumes (SIGCONT). Passes when every event of both channels is printed once and in order,
# no gap is reported, and u.hi overtook u.lo: at least MIN_AFTER u.lo events print after the
# last u.hi event. With one FIFO queue per connection none would, as every u.hi event was
# published after every u.lo event (checked: the same run with both channels at urgency 0
# fails). What the kernel's socket buffers hold when the subscriber stops (a few MB) stays in
# FIFO order; the replicas' queues, holding the other 15 MB or so, are what urgency reorders.
# (Dropping the least urgent first when a queue is full: test_brk_events.c.)
# Usage: test_urgency.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin urgency "$@"

LO_N=${URGENCY_LO_N:-20000}
HI_N=${URGENCY_HI_N:-200}
MIN_AFTER=1000

itest_cluster 4
itest_start_replicas 4 --queue-events 1000000 --queue-bytes 268435456
itest_op channel create u.lo --class cft,fifo,si,urgency=0
itest_op channel create u.hi --class cft,fifo,si,urgency=7

itest_stopped_burst u.lo u.hi "$LO_N" "$HI_N"
SUB=$ITEST_SUB

# Until every u.hi event is out and the output stopped growing for 3 s (at most 120 s).
last=-1
still=0
for t in $(seq 1 240); do
  kill -0 "$SUB" 2>/dev/null || itest_fail "trone sub exited: $(tail -n 1 "$D/sub.err")"
  size=$(stat -c %s "$D/sub.out")
  hi=$(grep -c '"channel":"u.hi"' "$D/sub.out" || true)
  if [ "$size" = "$last" ] && [ "$hi" -ge "$HI_N" ]; then
    still=$((still + 1))
    [ "$still" -lt 6 ] || break
  else
    still=0
  fi
  last=$size
  [ "$t" -lt 240 ] || itest_fail "after 120 s: $hi of $HI_N u.hi events"
  sleep 0.5
done
kill "$SUB" 2>/dev/null
wait "$SUB" 2>/dev/null

summary=$(python3 - "$D/sub.out" "$D/sub.err" "$LO_N" "$HI_N" "$MIN_AFTER" <<'EOF'
import json, sys
out, err, lo_n, hi_n, min_after = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])


def fail(why):
    print(why)  # to the test's failure line
    sys.exit(1)



order, lo_seen = [], []
for line in open(out):
    ev = json.loads(line)
    order.append(ev["channel"])
    if ev["channel"] == "u.hi":
        want = "H-%06d" % (order.count("u.hi"))
        if ev["payload"] != want:
            fail("u.hi event %d is %r, want %r" % (order.count("u.hi"), ev["payload"], want))
    elif ev["channel"] == "u.lo":
        lo_seen.append(int(ev["payload"][2:8]))
    else:
        fail("an event of channel %r" % ev["channel"])
hi = order.count("u.hi")
if hi != hi_n:
    fail("%d u.hi events, want %d" % (hi, hi_n))
if any(b != a + 1 for a, b in zip(lo_seen, lo_seen[1:])) or (lo_seen and lo_seen[0] != 1):
    fail("u.lo events missing, out of order or repeated")
last_hi = max(i for i, c in enumerate(order) if c == "u.hi")
after = sum(1 for c in order[last_hi + 1:] if c == "u.lo")
gaps = [l for l in open(err) if "gap:" in l]
if gaps:
    fail("a gap (the queues should hold everything): " + gaps[0].strip())
if len(lo_seen) != lo_n:
    fail("%d of %d u.lo events printed" % (len(lo_seen), lo_n))
if after < min_after:
    fail("only %d u.lo events printed after the last u.hi one (want >= %d): urgency did "
             "not reorder the queues" % (after, min_after))
first_hi = order.index("u.hi")
print("%d u.hi and %d u.lo events once and in order, no gap; u.hi overtook u.lo: the "
      "first printed after %d u.lo events, the last before %d more" %
      (hi, len(lo_seen), first_hi, after))
EOF
) || itest_fail "$summary"
itest_pass "$summary"
