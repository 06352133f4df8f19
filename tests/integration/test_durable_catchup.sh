#!/usr/bin/env bash
# test_durable_catchup.sh: a restarted replica catches up the durable events it missed from its
# peers (issue 4 point 3, docs/PROTOCOL.md 11.2). A 4-replica BFT cluster (f = 1) with data
# directories, a durable cft,fifo channel and a durable bft,fifo channel (no signatures: the
# catch-up of the bft channel needs f+1 = 2 peers sending the same bytes) and a durable
# bft,total channel (stored at the agreed positions, caught up on f+1 copies), one steady
# publisher on each.
# 1. Cycles: a random replica is killed with SIGKILL and restarted from its data directory a
#    moment later, one at a time, TRONE_TEST_CYCLES times (default 5). While it is down, a
#    short-lived publisher also publishes a batch on each channel and exits once the others
#    acknowledged it: nobody but the peers can give the restarted replica those events (the
#    steady publishers would resend what they still hold themselves). Every publisher must
#    exit 0 (every event acknowledged). Then every replica is stopped and
#    `trone replica --dump-events` of the four data directories must be identical and hold
#    every acknowledged event of both channels (each stream complete from 1). The
#    replicas get a bounded time to catch up: stop, dump, compare; if they differ, restart
#    all, wait, and compare again (at most 6 times).
#    A subscriber of each FIFO channel listens live through all the cycles: it must print every
#    acknowledged event exactly once, each publisher's in order (the subscriber side of the
#    fault test: replicas dying and coming back lose nothing and duplicate nothing).
# 2. Wiped: replica 2 starts with --rebuild (its store wiped) and must rebuild every durable
#    event from its peers: its dump equals the others'.
# TRONE_TEST_NO_SYNC=1 starts the replicas with anti-entropy disabled: the test then fails
# (that is how it was checked that it can fail).
# Usage: test_durable_catchup.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin durable_catchup "$@"

CYCLES=${TRONE_TEST_CYCLES:-5}
SEED=${TRONE_TEST_SEED:-$(( $(date +%s) % 32768 ))}
RANDOM=$SEED
ENVS=(TRONE_LOG=info)
[ -z "${TRONE_TEST_NO_SYNC:-}" ] || ENVS+=(TRONE_DEBUG_NO_SYNC=1)
echo "seed=$SEED cycles=$CYCLES" >&2
PUBS=()

itest_cluster 4
for i in 0 1 2 3; do itest_start $i "${ENVS[@]}"; done
itest_wait_ready 0 1 2 3
# Batches are published with a key of their own: two processes with one key would have
# their requests (channel show, ORDER) refused as stale.
itest_key batcher
itest_op register batcher "$D/batcher.key"
# The live subscribers and the steady publishers too (one key each, for the same reason).
for c in cft bft tot; do
  itest_key "steady$c"
  itest_op register "steady$c" "$D/steady$c.key"
done
for c in cft bft; do
  itest_key "listen$c"
  itest_op register "listen$c" "$D/listen$c.key"
done
itest_op channel create d.cft --class cft,fifo,durable --publishers '*' --subscribers listencft
itest_op channel create d.bft --class bft,fifo,durable --publishers '*' --subscribers listenbft
itest_op channel create d.tot --class bft,total,durable --publishers '*'

# gen NAME: lines NAME-1, NAME-2, ... about 300 a second until $D/stop exists; the count
# written is left in $D/NAME.count.
gen() {
  local i=0 j
  while [ ! -f "$D/stop" ] && [ $i -lt 200000 ]; do
    for j in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
      i=$((i + 1))
      echo "$1-$i"
    done
    sleep 0.05
  done
  echo $i >"$D/$1.count"
}

# The steady publishers have a key each too: three processes of the admin key starting at once
# had their `channel show` requests refused as stale now and then (the replicas keep one
# request id per client key, and a later process's id may be executed first).
pub_start() {
  (gen "$1" | timeout 600 "$TRONE" pub "d.$1" --timeout 60 --key "$D/steady$1.key" \
     >"$D/pub.$1" 2>&1
   echo $? >"$D/pub.$1.rc") &
  PUBS+=($!)
  ITEST_EXTRA+=($!)
}

# stop_all: SIGTERM every running replica (a clean close commits the last batch) and reap it.
stop_all() {
  local i p
  for i in 0 1 2 3; do
    p=${ITEST_PIDS[$i]:-}
    [ -n "$p" ] || continue
    kill -TERM "$p" 2>/dev/null
  done
  for i in 0 1 2 3; do
    p=${ITEST_PIDS[$i]:-}
    [ -n "$p" ] || continue
    wait "$p" 2>/dev/null
    ITEST_PIDS[$i]=
    echo "=== stopped $(date +%T.%N)" >>"$D/r$i.log"
  done
}

dump_all() {
  local i
  for i in 0 1 2 3; do
    "$TRONE" replica --id $i --dump-events >"$D/dump.$i" 2>"$D/dump.$i.err" ||
      itest_fail "dump of replica $i failed: $(tail -n 1 "$D/dump.$i.err")"
  done
}

dumps_equal() {
  cmp -s "$D/dump.0" "$D/dump.1" && cmp -s "$D/dump.0" "$D/dump.2" &&
    cmp -s "$D/dump.0" "$D/dump.3"
}

# check_complete TAG N STREAMS: dump.0 holds N events of TAG in STREAMS streams (one per
# publisher process), each stream's positions exactly 1..its count.
check_complete() {
  local got streams holed
  streams=$(awk -v t="$1" '$1 == t { print $3, $4 }' "$D/dump.0" | sort -u | wc -l)
  [ "$streams" = "$3" ] || itest_fail "$1: $streams streams in the dump, want $3"
  got=$(awk -v t="$1" '$1 == t' "$D/dump.0" | wc -l)
  [ "$got" = "$2" ] || itest_fail "$1: the replicas hold $got events, $2 were acknowledged"
  holed=$(awk -v t="$1" '$1 == t { k = $3 " " $4; n[k]++; if ($5 > m[k]) m[k] = $5 }
    END { for (k in n) if (n[k] != m[k]) print k }' "$D/dump.0")
  [ -z "$holed" ] || itest_fail "$1: streams with holes: $holed"
}

# held: "id durable_events durable_fetched" of each replica from `trone status --json`.
held() {
  timeout 15 "$TRONE" status --json --timeout 3 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for r in json.load(sys.stdin):
    print(r["id"], r.get("durable_events", "-"), r.get("durable_fetched", "-"))'
}

# wait_held N: bounded wait (60 s) until `trone status` shows N durable events at every replica.
wait_held() {
  local t
  for t in $(seq 1 60); do
    [ "$(held | awk -v n="$1" '$2 == n' | wc -l)" = 4 ] && return 0
    sleep 1
  done
  echo "status after 60 s: $(held | tr '\n' ';')" >&2
}

# converge WHAT N: wait until every replica reports N durable events, then stop, dump and
# compare; up to 6 times restart all and wait a little more.
converge() {
  local attempt i
  wait_held "$2"
  echo "$1: status (id events fetched): $(held | tr '\n' ';')" >&2
  for attempt in 1 2 3 4 5 6; do
    [ "$attempt" = 1 ] || sleep 5
    stop_all
    dump_all
    if dumps_equal; then
      echo "$1: the 4 event logs are identical ($(tail -n 1 "$D/dump.0")) after $attempt" \
        "attempt(s)" >&2
      return 0
    fi
    echo "$1: attempt $attempt: logs differ: $(for i in 0 1 2 3; do tail -n 1 "$D/dump.$i" |
      tr '\n' ' '; done)" >&2
    for i in 0 1 2 3; do itest_start $i "${ENVS[@]}"; done
  done
  itest_fail "$1: the replicas' event logs still differ after 6 attempts:" \
    "$(for i in 0 1 2 3; do tail -n 1 "$D/dump.$i" | tr '\n' ' '; done)"
}

# live_check TAG N: the live subscriber of TAG printed N lines, each once, and each
# publisher's lines (prefix before the last '-') in increasing order. Waits (60 s at most)
# for the last ones, then stops it.
live_check() {
  local t
  for t in $(seq 1 60); do
    [ "$(wc -l <"$D/live.$1")" -ge "$2" ] && break
    sleep 1
  done
  kill "${LIVE[$1]}" 2>/dev/null
  wait "${LIVE[$1]}" 2>/dev/null
  /usr/bin/python3 - "$D/live.$1" "$2" "$1" <<'PYEOF' || itest_fail "live subscriber of $1: see above"
import sys
lines = open(sys.argv[1]).read().split()
want = int(sys.argv[2])
if len(lines) != want or len(set(lines)) != want:
    print(f"FAIL: {sys.argv[3]}: {len(lines)} lines, {len(set(lines))} distinct, want {want}")
    sys.exit(1)
last = {}
for line in lines:
    prefix, n = line.rsplit("-", 1)
    if int(n) != last.get(prefix, 0) + 1:
        print(f"FAIL: {sys.argv[3]}: {line} after {prefix}-{last.get(prefix, 0)}")
        sys.exit(1)
    last[prefix] = int(n)
print(f"live subscriber of {sys.argv[3]}: {want} events once each, in order per publisher")
PYEOF
}

# 1. Random SIGKILL/restart cycles under a steady publish load.
rm -f "$D/stop"
declare -A LIVE
for c in cft bft; do
  TRONE_LOG=info "$TRONE" sub "d.$c" --timeout 900 --key "$D/listen$c.key" >"$D/live.$c" \
    2>"$D/live.$c.err" &
  LIVE[$c]=$!
  ITEST_EXTRA+=($!)
done
for t in $(seq 1 60); do
  [ "$(grep -l 'msg="attached"' "$D"/live.*.err 2>/dev/null | wc -l)" = 2 ] && break
  sleep 0.5
done
pub_start cft
pub_start bft
pub_start tot
sleep 2
BATCH=400
for cycle in $(seq 1 "$CYCLES"); do
  victim=$((RANDOM % 4))
  sleep "$((RANDOM % 2 + 1)).$((RANDOM % 10))"
  itest_kill "$victim"
  for c in cft bft tot; do
    seq 1 $BATCH | sed "s/^/$c-down$cycle-/" |
      timeout 120 "$TRONE" pub "d.$c" --timeout 60 --key "$D/batcher.key" \
      >"$D/pub.$c.down$cycle" 2>&1 ||
      itest_fail "cycle $cycle: batch on d.$c with replica $victim down not acknowledged:" \
        "$(tail -n 1 "$D/pub.$c.down$cycle")"
  done
  sleep "$((RANDOM % 2)).$((RANDOM % 10))"
  itest_start "$victim" "${ENVS[@]}"
  echo "cycle $cycle: replica $victim killed, 3 x $BATCH events published while down," \
    "restarted" >&2
done
sleep 2
touch "$D/stop"
for p in "${PUBS[@]}"; do wait "$p" 2>/dev/null; done
ITEST_EXTRA=("${LIVE[@]}")
for c in cft bft tot; do
  [ "$(cat "$D/pub.$c.rc" 2>/dev/null)" = 0 ] ||
    itest_fail "publisher on d.$c did not get every event acknowledged: $(tail -n 1 "$D/pub.$c")"
done
NCFT=$(( $(cat "$D/cft.count") + CYCLES * BATCH ))
NBFT=$(( $(cat "$D/bft.count") + CYCLES * BATCH ))
NTOT=$(( $(cat "$D/tot.count") + CYCLES * BATCH ))
echo "published and acknowledged: d.cft $NCFT, d.bft $NBFT, d.tot $NTOT" >&2
live_check cft "$NCFT"
live_check bft "$NBFT"
converge "after $CYCLES kill cycles" $((NCFT + NBFT + NTOT))
check_complete d.cft "$NCFT" $((CYCLES + 1))
check_complete d.bft "$NBFT" $((CYCLES + 1))
check_complete d.tot "$NTOT" 1
grep -h 'durable sync' "$D"/r*.log | tail -n 4 >&2

# 2. Replica 2's data directory wiped: it rebuilds every durable event from its peers.
for i in 0 1 3; do itest_start $i "${ENVS[@]}"; done
cat >"$D/rebuild.sh" <<EOF
#!/bin/sh
exec "$TRONE" "\$@" --rebuild
EOF
chmod +x "$D/rebuild.sh"
itest_start 2 "${ENVS[@]}" -- "$D/rebuild.sh"
grep -q 'data directory wiped' "$D/r2.log" 2>/dev/null || sleep 1
converge "after wiping replica 2" $((NCFT + NBFT + NTOT))
grep -q 'data directory wiped' "$D/r2.log" || itest_fail "replica 2 did not wipe its store"
check_complete d.cft "$NCFT" $((CYCLES + 1))
check_complete d.bft "$NBFT" $((CYCLES + 1))
check_complete d.tot "$NTOT" 1
itest_pass "$CYCLES SIGKILL/restart cycles under load, then a wiped replica: the 4 replicas" \
  "hold identical event logs with all $NCFT + $NBFT + $NTOT acknowledged events (seed $SEED)"
