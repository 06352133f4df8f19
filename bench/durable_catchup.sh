#!/usr/bin/env bash
# durable_catchup.sh: how long a restarted replica takes to catch up the durable events it
# missed (issue 4 point 3), and the disk bytes per stored event. A 4-replica cluster (model
# $MODEL, default cft) on loopback, a durable fifo channel of that model; replica 3 is stopped,
# N (default 100000) events of 100 bytes are published (trone pub exits 0: all acknowledged
# by the others), replica 3 is restarted and timed until it logged that it fetched N events
# from its peers ("durable sync progress"), then it is stopped and its dump compared with
# replica 0's. Prints one machine-readable line:
#   durable_catchup model=cft events=N catchup_s=S per_100k_s=S events_per_s=R
#     first_10k_s=S fetch_rate=R bytes_per_event=B identical=1
# catchup_s counts from the restart (process start, connections, the control table, the first
# round) to the last event fetched; fetch_rate is events/s between the 10000th and the last.
# Usage: bench/durable_catchup.sh PATH_TO_TRONE [N]
set -u
TRONE=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
N=${2:-100000}
MODEL=${MODEL:-cft}
D=$(mktemp -d "${TMPDIR:-/tmp}/trone-bench-catchup.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -z "$p" ] || kill -9 "$p" 2>/dev/null; done; }
trap cleanup EXIT
fail() { echo "durable_catchup FAIL: $* (logs in $D)" >&2; exit 1; }
now() { date +%s.%N; }

"$TRONE" init "$D/c" --replicas 4 --fault-model "$MODEL" --force >"$D/init.log" 2>&1 ||
  fail "init: $(tail -n 1 "$D/init.log")"
export TRONE_CLUSTER=$D/c/cluster.conf
start() { TRONE_LOG=info "$TRONE" replica --id "$1" >>"$D/r$1.log" 2>&1 & PIDS[$1]=$!; }
for i in 0 1 2 3; do start $i; done
sleep 2
timeout 60 "$TRONE" channel create d.bench --class "$MODEL,fifo,durable" --timeout 30 \
  >"$D/op.log" 2>&1 || fail "channel create: $(tail -n 1 "$D/op.log")"
sleep 1
kill -TERM "${PIDS[3]}"; wait "${PIDS[3]}" 2>/dev/null; PIDS[3]=
# N lines of 100 bytes: a 12-digit number and 88 x.
awk -v n="$N" 'BEGIN { x = sprintf("%88s", ""); gsub(/ /, "x", x);
  for (i = 1; i <= n; i++) printf "%012d%s\n", i, x }' >"$D/events.txt"
t=$(now)
timeout 900 "$TRONE" pub d.bench --timeout 60 <"$D/events.txt" >"$D/pub.log" 2>&1 ||
  fail "pub: $(tail -n 1 "$D/pub.log")"
echo "published $N events in $(echo "$(now) - $t" | bc) s with replica 3 down" >&2
sleep 1
t0=$(now)
start 3
first=
for k in $(seq 1 6000); do
  [ -n "$first" ] || ! grep -q 'durable sync progress' "$D/r3.log" || first=$(now)
  if grep -q "durable sync progress\" fetched=$N\$" "$D/r3.log"; then break; fi
  sleep 0.05
done
t1=$(now)
grep -q "durable sync progress\" fetched=$N\$" "$D/r3.log" ||
  fail "replica 3 did not fetch $N events within 300 s: $(grep 'durable sync' "$D/r3.log" | tail -n 1)"
for i in 0 1 2 3; do kill -TERM "${PIDS[$i]}"; wait "${PIDS[$i]}" 2>/dev/null; PIDS[$i]=; done
"$TRONE" replica --id 0 --dump-events >"$D/dump.0" 2>/dev/null || fail "dump 0"
"$TRONE" replica --id 3 --dump-events >"$D/dump.3" 2>/dev/null || fail "dump 3"
identical=0
cmp -s "$D/dump.0" "$D/dump.3" && identical=1
bytes=$(du -sb "$D/c/data/replica-0" | cut -f1)
awk -v n="$N" -v t0="$t0" -v t1="$t1" -v first="${first:-$t1}" -v b="$bytes" -v m="$MODEL" \
  -v id="$identical" 'BEGIN {
  s = t1 - t0; printf "durable_catchup model=%s events=%d catchup_s=%.2f per_100k_s=%.2f " \
    "events_per_s=%.0f first_10k_s=%.2f fetch_rate=%.0f bytes_per_event=%.0f identical=%d\n",
    m, n, s, s * 100000 / n, n / s, first - t0, (t1 > first ? (n - 10000) / (t1 - first) : 0),
    b / n, id }'
[ "$identical" = 1 ] || fail "replica 3's event log differs from replica 0's"
rm -rf "$D"
