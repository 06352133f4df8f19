#!/usr/bin/env bash
# test_slow_subscriber.sh: flow control with real processes (issue 3: a slow subscriber does
# not make a replica's memory grow without bound, and is told what it missed). 4 replicas with
# the default bounds (65536 events or 8 MiB queued per subscriber connection, drop-oldest);
# CFT FIFO channels s.lo (urgency 0) and s.hi (urgency 7). One `trone sub s.lo s.hi --json`
# attaches and is stopped (SIGSTOP); the admin publishes LO_N events of about 1 KiB on s.lo
# (about 60 MB, several times what a queue holds), then HI_N on s.hi; the subscriber resumes
# (SIGCONT).
# Passes when:
#   - every s.hi event is printed once and in order, and no gap is reported on s.hi (full
#     queues drop the oldest event of the least urgent channel first);
#   - s.lo events print in order and at most once, and what was not printed was reported:
#     printed + the gaps' counts = LO_N exactly, the last event printed (the replicas' queues
#     and the subscriber's own queue, when `trone sub` cannot print as fast as the replicas
#     send, both drop their oldest events first, with counted gap reports);
#   - the gap reports are summed up (at most GAP_LINES_MAX lines, not one per hole);
#   - no replica's peak resident memory (VmHWM) went over RSS_MAX_KB.
# Usage: test_slow_subscriber.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin slow_subscriber "$@"

LO_N=60000
HI_N=200
GAP_LINES_MAX=40
RSS_MAX_KB=$((48 * 1024)) # measured 23 to 25 MiB; unbounded queues would hold the 60 MB
# SLOW_REPLICA_ARGS="--queue-events 16000000 --queue-bytes 1073741824" shows the memory check
# failing when the queues are (almost) unbounded.
read -r -a replica_args <<<"${SLOW_REPLICA_ARGS:-}"

itest_cluster 4
itest_start_replicas 4 "${replica_args[@]}"
itest_op channel create s.lo --class cft,fifo,si,urgency=0
itest_op channel create s.hi --class cft,fifo,si,urgency=7

itest_stopped_burst s.lo s.hi "$LO_N" "$HI_N"
SUB=$ITEST_SUB

# Until the last s.lo event and every s.hi event are out (at most 120 s), and one more second
# for the last gap summary.
for t in $(seq 1 240); do
  kill -0 "$SUB" 2>/dev/null || itest_fail "trone sub exited: $(tail -n 1 "$D/sub.err")"
  hi=$(grep -c '"channel":"s.hi"' "$D/sub.out" || true)
  grep -q "\"L-$(printf %06d "$LO_N")-" "$D/sub.out" && [ "$hi" -ge "$HI_N" ] && break
  if [ "$t" -ge 240 ]; then
    lo=$(grep -c '"channel":"s.lo"' "$D/sub.out" || true)
    last=$(grep '"channel":"s.lo"' "$D/sub.out" | tail -n 1 | grep -o '"L-[0-9]*' || true)
    itest_fail "after 120 s: $hi of $HI_N s.hi events, s.lo $LO_N not printed ($lo s.lo" \
      "printed, the last ${last#\"}; stderr: $(grep -v '^level=' "$D/sub.err" | tail -n 3 |
        tr '\n' ' '))"
  fi
  sleep 0.5
done
sleep 2
kill "$SUB" 2>/dev/null
wait "$SUB" 2>/dev/null

rss=""
for i in 0 1 2 3; do
  kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/${ITEST_PIDS[$i]}/status")
  [ -n "$kb" ] || itest_fail "no VmHWM for replica $i"
  [ "$kb" -le "$RSS_MAX_KB" ] || itest_fail "replica $i peaked at $kb KiB (bound $RSS_MAX_KB)"
  rss="$rss${rss:+,}$((kb / 1024))"
done

summary=$(python3 - "$D/sub.out" "$D/sub.err" "$LO_N" "$HI_N" "$GAP_LINES_MAX" <<'EOF'
import json, re, sys
out, err, lo_n, hi_n, lines_max = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])


def fail(why):
    print(why)  # to the test's failure line
    sys.exit(1)


hi, lo = 0, []
for line in open(out):
    ev = json.loads(line)
    if ev["channel"] == "s.hi":
        hi += 1
        if ev["payload"] != "H-%06d" % hi:
            fail("s.hi event %d is %r" % (hi, ev["payload"]))
    elif ev["channel"] == "s.lo":
        lo.append(int(ev["payload"][2:8]))
    else:
        fail("an event of channel %r" % ev["channel"])
if hi != hi_n:
    fail("%d s.hi events, want %d" % (hi, hi_n))
if any(b <= a for a, b in zip(lo, lo[1:])) or not lo or lo[-1] != lo_n:
    fail("s.lo events out of order, repeated, or not ending at %d" % lo_n)
gaps = [l for l in open(err) if "gap:" in l]
if any("s.hi" in l for l in gaps):
    fail("a gap on s.hi: " + next(l for l in gaps if "s.hi" in l).strip())
lost, holes = 0, 0
for l in gaps:
    m = re.search(r"gap: (\d+) events (?:.* )?lost on s\.lo(?: in (\d+) holes)?", l)
    if not m:
        fail("a gap line without a count: " + l.strip())
    lost += int(m.group(1))
    holes += int(m.group(2) or 1)
if len(lo) + lost != lo_n:
    fail("s.lo: %d printed + %d reported lost != %d published" % (len(lo), lost, lo_n))
if len(gaps) > lines_max:
    fail("%d gap lines (at most %d: gaps are summed up)" % (len(gaps), lines_max))
print("s.hi: %d of %d in order, no gap; s.lo: %d printed, %d reported lost (%d holes in %d "
      "lines), %d in all" % (hi, hi_n, len(lo), lost, holes, len(gaps), len(lo) + lost))
EOF
) || itest_fail "$summary"
itest_pass "$summary; replicas peaked at $rss MiB"
