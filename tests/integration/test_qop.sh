#!/usr/bin/env bash
# test_qop.sh: the QoP methods end to end with real processes on loopback (docs/QOP.md).
# 4 BFT replicas (f=1) dump every PUBLISH they receive and every DELIVER they send
# (TRONE_DEBUG_EVENT_DUMP, a test-only aid). Channels cft,ha / bft,pks / bft,pke / cft (si),
# each with the registered client `reader` as subscriber: a publisher (the admin) and a
# subscriber (reader) get complete streams identical to the input on every channel; the PKE
# payloads' marker appears nowhere in what the replicas received or forwarded, while the SI
# channel's marker does (so the check can fail); `trone channel show` prints each method; the
# registered client `intruder`, not a subscriber, is refused on the PKE channel; and a reader
# added to the PKE channel while its publisher runs gets the events published after the
# publisher re-keyed (it learns the new key from the block every event of a new key carries).
# The same for HA and PKE on total-order channels (bft,total,ha and cft,total,pke).
# Usage: test_qop.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin qop "$@"

N=200

# sub_start NAME TAG COUNT KEY: starts `trone sub` in the background (output $D/sub.NAME), sets
# SUB_PID, and waits (at most 30 s) until it reports being attached on n-f replicas.
sub_start() {
  local name=$1 tag=$2 count=$3 key=$4
  TRONE_LOG=info "$TRONE" sub "$tag" --count "$count" --timeout 120 --key "$key" \
    >"$D/sub.$name" 2>"$D/sub.$name.err" &
  SUB_PID=$!
  ITEST_EXTRA+=("$SUB_PID")
  local t
  for t in $(seq 1 60); do
    grep -q 'msg="attached"' "$D/sub.$name.err" && return 0
    kill -0 "$SUB_PID" 2>/dev/null ||
      itest_fail "trone sub $tag exited: $(tail -n 1 "$D/sub.$name.err")"
    sleep 0.5
  done
  itest_fail "trone sub $tag not attached after 30 s: $(tail -n 1 "$D/sub.$name.err")"
}

# sub_wait PID: waits (bounded by the subscriber's own --timeout) and returns its status.
sub_wait() {
  local rc=0
  wait "$1" || rc=$?
  return $rc
}

itest_cluster 4
for i in 0 1 2 3; do itest_start $i TRONE_DEBUG_EVENT_DUMP="$D/dump.$i"; done
itest_wait_ready 0 1 2 3

itest_key reader
itest_key intruder
itest_key late
itest_op register reader "$D/reader.key"
itest_op register intruder "$D/intruder.key"
itest_op register late "$D/late.key"
itest_op channel create q.ha --class cft,ha --subscribers reader
itest_op channel create q.pks --class bft,pks --subscribers reader
itest_op channel create q.pke --class bft,pke --subscribers reader
itest_op channel create q.si --class cft --subscribers reader
# Total order carries the HA/PKE envelope through ORDER digests (docs/PROTOCOL.md section 10).
itest_op channel create q.hat --class bft,total,ha --subscribers reader
itest_op channel create q.pket --class cft,total,pke --subscribers reader

for pair in q.ha:fifo,ha q.pks:fifo,pks q.pke:fifo,pke q.si:fifo,si q.hat:total,ha \
  q.pket:total,pke; do
  tag=${pair%%:*}
  method=${pair##*:}
  out=$(timeout 45 "$TRONE" channel show "$tag" --timeout 30 2>&1) ||
    itest_fail "channel show $tag failed: $out"
  echo "$out" | grep -qE "class +[a-z]+,$method," ||
    itest_fail "channel show $tag does not print method $method: $out"
done

# Every channel: the reader gets exactly the published stream. Markers differ per channel so
# the dump check below knows which channel's payload it found.
for ch in ha pks pke si hat pket; do
  marker=$(echo "${ch%t}" | tr a-z A-Z)SECRET
  want=$(seq 1 $N | sed "s/^/$marker-/")
  sub_start "$ch" "q.$ch" "$N" "$D/reader.key"
  pid=$SUB_PID
  echo "$want" | timeout 60 "$TRONE" pub "q.$ch" >"$D/pub.$ch" 2>&1 ||
    itest_fail "pub on q.$ch failed: $(tail -n 1 "$D/pub.$ch")"
  sub_wait "$pid" || itest_fail "sub on q.$ch failed: $(tail -n 1 "$D/sub.$ch.err")"
  got=$(cat "$D/sub.$ch")
  [ "$got" = "$want" ] ||
    itest_fail "q.$ch: the stream differs from the input ($(echo "$got" | grep -c .) lines)"
done

# What the replicas handled: the PKE marker never, the SI (and HA: no confidentiality) markers
# in clear. grep -a treats the binary dump as text.
for i in 0 1 2 3; do
  [ -s "$D/dump.$i" ] || itest_fail "replica $i wrote no event dump"
  ! grep -qa PKESECRET "$D/dump.$i" ||
    itest_fail "replica $i received or forwarded a PKE payload in clear"
  grep -qa SISECRET "$D/dump.$i" ||
    itest_fail "replica $i's dump lacks the SI marker: the dump check cannot fail"
done
si_hits=$(cat "$D"/dump.* | grep -ac SISECRET)

# The intruder is registered but not a subscriber of q.pke: refused, it reads nothing.
out=$(timeout 60 "$TRONE" sub q.pke --count 1 --timeout 10 --key "$D/intruder.key" 2>&1); rc=$?
[ $rc = 1 ] || itest_fail "unauthorized subscriber exited $rc (want 1): $out"
! echo "$out" | grep -q PKESECRET || itest_fail "the intruder read a PKE payload"

# Re-keying: a publisher runs on q.pke; `late` is then authorized and subscribes. Within a few
# seconds the publisher sees the new subscriber set, makes a new key, and late reads the
# events published from then on.
mkfifo "$D/in"
timeout 120 "$TRONE" pub q.pke --timeout 30 <"$D/in" >"$D/pub.rekey" 2>&1 &
PUB_PID=$!
ITEST_EXTRA+=("$PUB_PID")
exec 7>"$D/in"
echo "PKESECRET-before" >&7
sleep 1
itest_op channel alter q.pke --add-subscribers late
sub_start late q.pke 3 "$D/late.key"
late_pid=$SUB_PID
for k in $(seq 1 120); do
  echo "PKESECRET-after-$k" >&7
  sleep 0.25
  kill -0 "$late_pid" 2>/dev/null || break
done
exec 7>&-
rc=0
wait "$PUB_PID" || rc=$?
[ $rc = 0 ] || itest_fail "pub on q.pke during re-keying exited $rc: $(tail -n 1 "$D/pub.rekey")"
sub_wait "$late_pid" || itest_fail "late subscriber failed: $(tail -n 1 "$D/sub.late.err")"
[ "$(grep -c '^PKESECRET-after-' "$D/sub.late")" = 3 ] ||
  itest_fail "late subscriber did not read 3 events after the re-key: $(cat "$D/sub.late")"
grep -q 'msg="new channel key" tag=q.pke recipients=2' "$D/pub.rekey" ||
  itest_fail "the publisher did not re-key q.pke for 2 subscribers: $(cat "$D/pub.rekey")"
for i in 0 1 2 3; do
  ! grep -qa PKESECRET "$D/dump.$i" || itest_fail "replica $i saw a PKE payload in clear"
done

itest_pass "ha, pks, pke, si: $N of $N events identical to the input; PKE marker in no" \
  "replica's dump (SI marker in clear $si_hits times); intruder refused; late subscriber" \
  "read after re-keying"
