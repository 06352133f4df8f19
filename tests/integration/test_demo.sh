#!/usr/bin/env bash
# test_demo.sh: `trone demo` (the README's demo) runs every step and checks what it claims:
# control table through a leader kill and a restart, then a publisher and two subscribers on a
# CFT and a BFT channel while a replica is killed, then on the BFT channel while another replica
# runs the test-only Byzantine build. The demo itself compares the subscribers' outputs with
# what was published; this test also checks its narration names each round.
# Usage: test_demo.sh PATH_TO_TRONE [PATH_TO_TRONE_BYZ]
. "$(dirname "$0")/lib.sh"
itest_begin demo "$@"
itest_need_byz

timeout 300 "$TRONE" demo --byz "$TRONE_BYZ_BIN" >"$D/demo.out" 2>&1 ||
  itest_fail "trone demo failed: $(tail -n 3 "$D/demo.out")"
grep -q "^demo ok" "$D/demo.out" || itest_fail "no 'demo ok' line"
grep -q "with replica 3 killed half way" "$D/demo.out" || itest_fail "no crash round"
grep -q "while replica 1 is Byzantine" "$D/demo.out" || itest_fail "no Byzantine round"
itest_pass "demo: every step held, crash and Byzantine rounds included"
