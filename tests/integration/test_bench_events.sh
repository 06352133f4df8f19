#!/usr/bin/env bash
# test_bench_events.sh: `trone bench events` end to end on a small load, for its behaviour, not
# its speed (nothing here reads a figure). With 2 publishers and 2 subscribers it must exit 0
# (every subscriber got every event exactly once in FIFO order), print one measurement per
# class and rate with the right event count, print or skip (with a reason) the Mosquitto and
# NATS baselines, print the ratio lines, report a class the cluster refuses as skipped, and
# leave no process (replica, mosquitto, nats-server) and no directory behind. Usage errors exit 2.
# Usage: test_bench_events.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin bench_events "$@"

OUT=$D/bench.out
ERR=$D/bench.err
TMPDIR=$D "$TRONE" bench events --size 100 --publishers 2 --subscribers 2 --events 2000 \
  --classes 'cft,fifo,si/bft,fifo,pks/bft,total,si' --rate 0,half >"$OUT" 2>"$ERR" &
BENCH=$!
ITEST_EXTRA+=("$BENCH")
for t in $(seq 1 600); do
  kill -0 "$BENCH" 2>/dev/null || break
  sleep 0.5
done
kill -0 "$BENCH" 2>/dev/null && itest_fail "trone bench events still runs after 300 s"
wait "$BENCH"
rc=$?
ITEST_EXTRA=()
[ "$rc" -eq 0 ] || itest_fail "trone bench events exited $rc: $(tail -n 3 "$ERR")"

grep -q '^bench=events-machine cores=[0-9]* ed25519_verify_us=' "$OUT" ||
  itest_fail "no machine line"
for cls in cft,fifo,si bft,fifo,pks; do
  n=$(grep -c "^bench=events system=trone class=$cls,urgency=0 replicas=4 size=100 publishers=2 subscribers=2 .* events=2000 " "$OUT")
  [ "$n" -eq 2 ] || itest_fail "expected 2 measurements (rates 0 and half) of $cls, got $n"
done
# Total order is refused today (skipped with the reason) or measured once it exists.
grep -Eq '^bench=events system=trone class=bft,total,si,urgency=0 .*(skipped=|events=2000 )' \
  "$OUT" || itest_fail "bft,total,si neither measured nor skipped"
for sys in mosquitto nats; do
  grep -Eq "^bench=events system=$sys .*(events=2000 |skipped=)" "$OUT" ||
    itest_fail "no $sys line"
done
for name in cft_fifo_si_over_mosquitto cft_fifo_si_over_nats bft_total_over_mosquitto \
  bft_total_p50_ms_at_half_peak bft_fifo_pks_over_ed25519_bound; do
  grep -q "^bench=events-ratio size=100 publishers=2 subscribers=2 name=$name value=" "$OUT" ||
    itest_fail "no ratio line $name"
done
# Every peak_kib list names 4 replicas.
grep '^bench=events system=trone .*events=' "$OUT" | grep -vq 'peak_kib=[0-9]*,[0-9]*,[0-9]*,[0-9]* ' &&
  itest_fail "a measurement without 4 peak memory figures"
pgrep -f "$D/trone-bench" >/dev/null && itest_fail "processes of the benchmark still run"
ls -d "$D"/trone-bench-* >/dev/null 2>&1 && itest_fail "the benchmark left its directory"

"$TRONE" bench events --size 10 >/dev/null 2>&1
[ $? -eq 2 ] || itest_fail "--size 10 (below the header) did not exit 2"
"$TRONE" bench events --classes bft,bogus >/dev/null 2>&1
[ $? -eq 2 ] || itest_fail "an unknown class did not exit 2"

itest_pass "2 publishers x 2 subscribers, every event once and in order, baselines and ratios printed"
