#!/usr/bin/env bash
# test_pubsub.sh: the event path end to end with real processes on loopback. 4 BFT replicas
# (f=1), a CFT and a BFT FIFO channel. With replica 2 SIGKILLed, a subscriber that attached
# before the publisher started prints every event exactly once and in order, and `trone pub`
# exits 0 (every event acknowledged by f+1 replicas under CFT, 2f+1 under BFT). A registered
# client that is not among a channel's publishers is refused with exit 1 and one line. With 2
# of 4 replicas killed a BFT channel cannot gather 2f+1 acknowledgements: `trone pub` exits 1
# and says how many events were not acknowledged. Usage errors exit 2.
# Usage: test_pubsub.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin pubsub "$@"

N=500

# sub_start TAG COUNT [ARGS...]: starts `trone sub` in the background (output $D/sub.TAG), sets
# SUB_PID, and waits (at most 30 s) until it reports being attached on n-f replicas.
sub_start() {
  local tag=$1 count=$2
  shift 2
  TRONE_LOG=info "$TRONE" sub "$tag" --count "$count" --timeout 120 "$@" >"$D/sub.$tag" \
    2>"$D/sub.$tag.err" &
  SUB_PID=$!
  ITEST_EXTRA+=("$SUB_PID")
  local t
  for t in $(seq 1 60); do
    grep -q 'msg="attached"' "$D/sub.$tag.err" && return 0
    kill -0 "$SUB_PID" 2>/dev/null ||
      itest_fail "trone sub $tag exited: $(tail -n 1 "$D/sub.$tag.err")"
    sleep 0.5
  done
  itest_fail "trone sub $tag not attached after 30 s: $(tail -n 1 "$D/sub.$tag.err")"
}

# sub_wait: waits for SUB_PID to exit (at most 120 s, its own --timeout) and returns its status.
sub_wait() {
  local rc=0
  wait "$SUB_PID" || rc=$?
  return $rc
}

itest_cluster 4
for i in 0 1 2 3; do itest_start $i; done
itest_wait_ready 0 1 2 3

itest_key intruder
itest_op register intruder "$D/intruder.key"
itest_op channel create t.cft --class cft,fifo
itest_op channel create t.bft --class bft,fifo

# Usage errors exit 2; an unknown channel is a one-line failure with exit 1.
"$TRONE" pub >/dev/null 2>&1; [ $? = 2 ] || itest_fail "trone pub without TAG did not exit 2"
"$TRONE" sub t.cft --count x >/dev/null 2>&1; [ $? = 2 ] || itest_fail "sub --count x: not 2"
"$TRONE" pub t.cft --bogus >/dev/null 2>&1; [ $? = 2 ] || itest_fail "pub --bogus: not 2"
out=$(timeout 60 "$TRONE" pub no.such.channel hello 2>&1); rc=$?
[ $rc = 1 ] && [ "$(echo "$out" | wc -l)" = 1 ] ||
  itest_fail "pub on an unknown channel: rc=$rc, want 1 and one line: $out"

# The intruder is registered but not a publisher of t.cft (only the admin is): refused.
out=$(timeout 60 "$TRONE" pub t.cft hello --key "$D/intruder.key" --timeout 10 2>&1); rc=$?
[ $rc = 1 ] || itest_fail "unauthorized publisher exited $rc (want 1): $out"
[ "$(echo "$out" | wc -l)" = 1 ] || itest_fail "unauthorized publisher: not one line: $out"
echo "$out" | grep -qiE 'not authori[sz]ed|refused' ||
  itest_fail "unauthorized publisher: no refusal in: $out"

itest_kill 2
want=$(seq 1 $N | sed 's/^/event-/')
for cls in cft bft; do
  sub_start "t.$cls" "$N"
  echo "$want" | timeout 60 "$TRONE" pub "t.$cls" >"$D/pub.$cls" 2>&1 ||
    itest_fail "pub on t.$cls with replica 2 down failed: $(tail -n 1 "$D/pub.$cls")"
  sub_wait || itest_fail "sub on t.$cls failed: $(tail -n 1 "$D/sub.t.$cls.err")"
  got=$(grep -oE 'event-[0-9]+' "$D/sub.t.$cls")
  [ "$(echo "$got" | grep -c .)" = $N ] ||
    itest_fail "t.$cls: delivered $(echo "$got" | grep -c .) of $N"
  [ "$got" = "$want" ] || itest_fail "t.$cls: events out of order or duplicated"
done

# --json lines carry the channel, publisher, sequence number and both timestamps.
sub_start t.cft 1 --json
timeout 60 "$TRONE" pub t.cft 'json "quoted"' >"$D/pub.json" 2>&1 ||
  itest_fail "pub of one event failed: $(tail -n 1 "$D/pub.json")"
sub_wait || itest_fail "sub --json failed: $(tail -n 1 "$D/sub.t.cft.err")"
/usr/bin/python3 -c '
import json, sys
e = json.loads(open(sys.argv[1]).readline())
assert e["channel"] == "t.cft" and e["payload"] == "json \"quoted\"", e
assert len(e["publisher"]) == 64 and e["seq"] == 1 and e["epoch"] > 0, e
assert e["time_us"] > 0 and e["received_us"] > 0, e
' "$D/sub.t.cft" || itest_fail "sub --json line is wrong: $(head -c 300 "$D/sub.t.cft")"

# Two replicas down: a BFT channel cannot gather 2f+1 = 3 acknowledgements. The publisher
# learns the class and gets its first event through while 3 replicas live, then replica 3 dies.
sub_start t.bft 1
mkfifo "$D/in"
timeout 90 "$TRONE" pub t.bft --timeout 3 <"$D/in" >"$D/pub.down" 2>&1 &
PUB_PID=$!
ITEST_EXTRA+=("$PUB_PID")
exec 7>"$D/in"
echo first >&7
sub_wait || itest_fail "the first event on t.bft did not arrive: $(tail -n 1 "$D/sub.t.bft.err")"
itest_kill 3
for i in $(seq 2 10); do echo "more-$i" >&7; done
exec 7>&-
rc=0
wait "$PUB_PID" || rc=$?
[ $rc = 1 ] || itest_fail "pub with 2 of 4 replicas down exited $rc (want 1): $(cat "$D/pub.down")"
grep -qE '^trone pub: (9|10) of 10 events not acknowledged' "$D/pub.down" ||
  itest_fail "pub with 2 replicas down: no count of unacknowledged events: $(cat "$D/pub.down")"

itest_pass "cft and bft: $N of $N events once and in order with replica 2 down; intruder" \
  "refused; $(grep -oE '[0-9]+ of 10 events not acknowledged' "$D/pub.down") with 2 down"
