#!/usr/bin/env bash
# test_total_order.sh: total-order channels end to end with real processes on loopback
# (docs/PROTOCOL.md section 10). 4 BFT replicas (f=1). On a `bft,total` channel, 3 publishers
# publish concurrently (each its own key) while 2 subscribers listen: both subscribers print
# the very same sequence of consecutive positions with every event exactly once, and each
# publisher's events appear in its FIFO order. Then the same with replica 2 SIGKILLed, on a
# BFT and on a CFT total-order channel, and while replica 2 restarts; and on a fresh cluster
# whose first leader is Byzantine (trone-byz, equivocating). A client that is not a publisher of the channel is
# refused (its ORDER and its PUBLISH): exit 1.
# Usage: test_total_order.sh PATH_TO_TRONE [PATH_TO_TRONE_BYZ] (default: trone-byz next to it)
. "$(dirname "$0")/lib.sh"
itest_begin total_order "$@"

N=300
PUBS="p1 p2 p3"

# sub_start NAME TAG COUNT: `trone sub --json` as NAME in the background (output $D/NAME.out);
# waits (at most 30 s) until it reports being attached on n-f replicas. Sets SUB_PIDS[NAME].
declare -A SUB_PIDS
sub_start() {
  local name=$1 tag=$2 count=$3
  TRONE_LOG=info "$TRONE" sub "$tag" --count "$count" --timeout 150 --json \
    --key "$D/$name.key" >"$D/$name.out" 2>"$D/$name.err" &
  SUB_PIDS[$name]=$!
  ITEST_EXTRA+=("$!")
  for _ in $(seq 1 60); do
    grep -q 'msg="attached"' "$D/$name.err" && return 0
    kill -0 "${SUB_PIDS[$name]}" 2>/dev/null ||
      itest_fail "trone sub as $name exited: $(tail -n 1 "$D/$name.err")"
    sleep 0.5
  done
  itest_fail "trone sub as $name not attached after 30 s: $(tail -n 1 "$D/$name.err")"
}

# feed P SLOW: P's N events, one per line; SLOW=1 (or 2) pauses 50 (100) ms every 30 lines so
# that the publishers' ORDERs interleave (many small ranges instead of one).
feed() {
  local p=$1 slow=$2 i
  for i in $(seq 1 $N); do
    echo "$p-$i"
    if [ "$slow" != 0 ] && [ $((i % 30)) = 0 ]; then sleep "0.0$((5 * slow))"; fi
  done
}

# round TAG LABEL SLOW: 3 concurrent publishers of N events each, 2 subscribers; checks the
# promises on both subscribers' outputs.
round() {
  local tag=$1 label=$2 slow=$3 name p rc
  for name in s1 s2; do sub_start "$name" "$tag" $((3 * N)); done
  local pids=()
  for p in $PUBS; do
    feed "$p" "$slow" |
      timeout 120 "$TRONE" pub "$tag" --key "$D/$p.key" >"$D/pub.$p.$label" 2>&1 &
    pids+=("$!")
    ITEST_EXTRA+=("$!")
  done
  [ -z "${RESTART:-}" ] || { sleep 0.3; itest_start "$RESTART"; }
  for i in 0 1 2; do
    rc=0
    wait "${pids[$i]}" || rc=$?
    [ $rc = 0 ] || itest_fail "$label: publisher $i exited $rc: $(tail -n 1 "$D/pub.p$((i + 1)).$label")"
  done
  for name in s1 s2; do
    rc=0
    wait "${SUB_PIDS[$name]}" || rc=$?
    [ $rc = 0 ] || itest_fail "$label: subscriber $name exited $rc: $(tail -n 1 "$D/$name.err")"
  done
  /usr/bin/python3 - "$D/s1.out" "$D/s2.out" "$N" "$label" <<'EOF' || itest_fail "$label: see above"
import json, sys
n = int(sys.argv[3])
seqs = []
for path in sys.argv[1:3]:
    events = [json.loads(line) for line in open(path)]
    seqs.append([(e["position"], e["payload"]) for e in events])
    positions = [e["position"] for e in events]
    # Positions are consecutive (no gap) and each event appears once.
    assert positions == list(range(positions[0], positions[0] + len(positions))), path
    payloads = [e["payload"] for e in events]
    assert len(payloads) == 3 * n == len(set(payloads)), (path, len(payloads))
    for p in ("p1", "p2", "p3"):
        mine = [int(x.split("-")[1]) for x in payloads if x.startswith(p + "-")]
        assert mine == list(range(1, n + 1)), (path, p, "not FIFO or incomplete")
if seqs[0] != seqs[1]:
    first = next(i for i, (a, b) in enumerate(zip(*seqs)) if a != b)
    print("FAIL: the subscribers' sequences differ at index", first, seqs[0][first], seqs[1][first])
    sys.exit(1)
print("ok", sys.argv[4], len(seqs[0]), "events, same sequence")
EOF
}

itest_cluster 4
for i in 0 1 2 3; do itest_start $i; done
itest_wait_ready 0 1 2 3

for name in $PUBS s1 s2 intruder; do
  itest_key "$name"
  itest_op register "$name" "$D/$name.key"
done
for tag in tot.bft tot.bft2 tot.cft tot.bft3; do
  cls=bft,total
  [ "$tag" != tot.cft ] || cls=cft,total
  itest_op channel create "$tag" --class "$cls" --publishers p1,p2,p3 --subscribers s1,s2
done

# A registered client that is not a publisher: refused, one line, exit 1.
out=$(timeout 60 "$TRONE" pub tot.bft hello --key "$D/intruder.key" --timeout 10 2>&1); rc=$?
[ $rc = 1 ] || itest_fail "unauthorized publisher exited $rc (want 1): $out"
[ "$(echo "$out" | wc -l)" = 1 ] || itest_fail "unauthorized publisher: not one line: $out"

round tot.bft "bft, 4 replicas" 1
itest_kill 2
round tot.bft2 "bft, replica 2 down" 0
round tot.cft "cft, replica 2 down" 1
# Replica 2 comes back while the publishers run: it catches up by the protocol, fetches what
# it missed from its peers or skips it, and the subscribers still agree.
RESTART=2 round tot.bft3 "bft, replica 2 restarted meanwhile" 2

# Stop the replicas cleanly: each logs its total-order counters. No replica that stayed up had
# to skip a range (events missing after the wait, even after asking its peers); the restarted
# one may have (ORDERs it learnt during catch-up whose events nobody kept).
for i in 0 1 3 2; do
  kill -TERM "${ITEST_PIDS[$i]}" 2>/dev/null
  wait "${ITEST_PIDS[$i]}" 2>/dev/null
  ITEST_PIDS[i]=
  line=$(grep 'msg="total order"' "$D/r$i.log" | tail -n 1)
  if [ "$i" = 2 ]; then
    echo "replica 2 (restarted): ${line:-no ORDER executed since its restart}"
    continue
  fi
  [ -n "$line" ] || itest_fail "replica $i logged no total-order counters"
  echo "$line" | grep -q ' skipped=0 ' || itest_fail "replica $i skipped ranges: $line"
  echo "replica $i: $line"
done

# A Byzantine first leader (the TEST-ONLY trone-byz, TRONE_BYZ=equivocate: different
# PRE_PREPAREs to different replicas): the ORDERs are agreed after a view change, and the
# subscribers still deliver one and the same sequence.
itest_need_byz
itest_cleanup
rm -rf "$D/c" "$D"/r*.log
itest_cluster 4
itest_start 0 TRONE_BYZ=equivocate -- "$TRONE_BYZ_BIN"
for i in 1 2 3; do itest_start $i; done
itest_wait_ready 0 1 2 3
for name in $PUBS s1 s2; do itest_op register "$name" "$D/$name.key"; done
itest_op channel create tot.byz --class bft,total --publishers p1,p2,p3 --subscribers s1,s2
round tot.byz "bft, Byzantine leader" 1
grep -q 'msg="byzantine action"' "$D/r0.log" ||
  itest_fail "replica 0 logged no Byzantine action (the filter did nothing)"
itest_status >/dev/null
VIEW=$(itest_field 1 2)
[ "${VIEW:-0}" -ge 1 ] || itest_fail "the correct replicas are still in view ${VIEW:-?}"

itest_pass "3 publishers x $N events, 2 subscribers: same total order, FIFO per publisher," \
  "nothing lost (bft; bft and cft with replica 2 down; bft while it restarts; bft with an" \
  "equivocating leader, now view $VIEW); intruder" \
  "refused; no range skipped by the replicas that stayed up"
