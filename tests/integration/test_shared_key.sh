#!/usr/bin/env bash
# test_shared_key.sh: several processes using one key at once (docs/PROTOCOL.md 4: the
# replicas execute the requests of one key in any id order, each once). Four real replicas.
# Two `trone pub` processes with the admin key publish on a bft,total channel (each sends its
# ORDERs through the replication protocol as that key) and two more on a cft,fifo channel,
# while `trone channel create` runs with the same key, again and again.
# Passes when every control operation succeeds (before, one came back "refused as stale: the
# operation may or may not have been applied" whenever a publisher's ORDER ran first), every
# publisher exits 0 (before, the older process's ORDERs were refused), and each subscriber
# gets every event once, each publisher's in its own order (before, the FIFO subscriber
# dropped the older process's events once the newer one's arrived).
# Then 12 publishers of the key start at once on a durable channel: a subscriber from position
# 0 must get all their events (each process needs its own epoch).
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

subs=()
for ch in tot fifo; do
  timeout 120 "$TRONE" sub "k.$ch" --count $((2 * N)) --timeout 90 >"$D/sub.$ch" \
    2>"$D/sub.$ch.err" &
  subs+=($!)
  ITEST_EXTRA+=($!)
  for t in $(seq 1 60); do
    grep -q 'msg="attached"' "$D/sub.$ch.err" && break
    [ "$t" -lt 60 ] || itest_fail "trone sub k.$ch not attached after 30 s"
    sleep 0.5
  done
done

seq 1 $N | sed 's/^/A-/' >"$D/a.in"
seq 1 $N | sed 's/^/B-/' >"$D/b.in"
seq 1 $N | sed 's/^/F-/' >"$D/f.in"
seq 1 $N | sed 's/^/G-/' >"$D/g.in"
# Lines fed 20 at a time, 50 ms apart: the publishers send ORDERs for the whole time the
# control commands run (a burst would be over before the first command started).
feed() { awk '{ print; fflush() } NR % 20 == 0 { system("sleep 0.05") }' "$1"; }
pids=()
for who in a b; do
  feed "$D/$who.in" | timeout 120 "$TRONE" pub k.tot >"$D/pub.$who" 2>&1 &
  pids+=($!)
  ITEST_EXTRA+=($!)
done
for who in f g; do
  feed "$D/$who.in" | timeout 120 "$TRONE" pub k.fifo >"$D/pub.$who" 2>&1 &
  pids+=($!)
  ITEST_EXTRA+=($!)
done

# The control commands take the key's lock among themselves, not against the publishers.
for k in $(seq 1 $CREATES); do
  out=$(timeout 60 "$TRONE" channel create "k.extra$k" --class cft --timeout 30 2>&1) ||
    itest_fail "channel create k.extra$k with the publishers' key failed: $out"
done

for p in "${pids[@]}"; do
  wait "$p" || itest_fail "a publisher failed: $(tail -q -n 1 "$D"/pub.*)"
done
for p in "${subs[@]}"; do
  wait "$p" || itest_fail "a subscriber failed: $(tail -q -n 1 "$D"/sub.*.err)"
done

for pair in tot:a fifo:f tot:b fifo:g; do
  ch=${pair%%:*} who=${pair#*:}
  tag=$(echo "$who" | tr a-z A-Z)
  got=$(grep -c "^$tag-" "$D/sub.$ch" || true)
  [ "$got" = "$N" ] || itest_fail "the k.$ch subscriber got $got of $N events of $tag"
  [ "$(grep "^$tag-" "$D/sub.$ch")" = "$(cat "$D/$who.in")" ] ||
    itest_fail "$tag's events out of order on k.$ch"
done
# Many short publishers of one key started at once (as a monitoring system forks its checks)
# on a durable channel: each must get its own epoch, even within one millisecond (the durable
# stream id holds the epoch in ms). Before rt_events_epoch_pick, 12 such processes lost 6 of
# their 36 events here while every one exited 0.
itest_op channel create k.dur --class cft,fifo,si,durable
BURST=12
pids=()
for k in $(seq 1 $BURST); do
  printf 'p%02d-1\np%02d-2\np%02d-3\n' "$k" "$k" "$k" |
    timeout 60 "$TRONE" pub k.dur >"$D/burst.$k" 2>&1 &
  pids+=($!)
  ITEST_EXTRA+=($!)
done
for p in "${pids[@]}"; do
  wait "$p" || itest_fail "a burst publisher failed: $(tail -q -n 1 "$D"/burst.*)"
done
timeout 60 "$TRONE" sub k.dur --from 0 --count $((3 * BURST)) --timeout 20 >"$D/sub.dur" \
  2>"$D/sub.dur.err" || itest_fail "the durable subscriber got $(wc -l <"$D/sub.dur") of" \
  "$((3 * BURST)) events of $BURST publishers started at once"
for k in $(seq 1 $BURST); do
  [ "$(grep "^p$(printf %02d "$k")-" "$D/sub.dur" | tr '\n' ' ')" = \
    "$(printf 'p%02d-1 p%02d-2 p%02d-3 ' "$k" "$k" "$k")" ] ||
    itest_fail "publisher $k's events missing or out of order on k.dur"
done

list=$(timeout 60 "$TRONE" channel list --timeout 30 2>&1) || itest_fail "channel list: $list"
made=$(echo "$list" | grep -c 'k\.extra')
[ "$made" = "$CREATES" ] || itest_fail "$made of $CREATES channels created"

itest_pass "4 publishers and $CREATES channel creates with one key at once: every operation" \
  "succeeded; $((2 * N)) total-order and $((2 * N)) FIFO events once and in order; $BURST" \
  "publishers started at once: $((3 * BURST)) durable events once and in order"
