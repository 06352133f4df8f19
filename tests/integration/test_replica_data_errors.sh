#!/usr/bin/env bash
# test_replica_data_errors.sh: a replica never silently uses a data directory that is not its
# own or not intact (issue 4, docs/PROTOCOL.md section 11). On a 4-replica BFT cluster with a
# few agreed operations, replica 3 is stopped and restarted:
# 1. with replica 2's data directory: refused, naming the owner;
# 2. after a byte of its stored log was flipped: refused as corrupt, pointing at --rebuild;
#    then with --rebuild: starts empty and catches up from its peers to the same digest;
# 3. after its data file was cut in half: refused as truncated; --rebuild recovers again.
# Usage: test_replica_data_errors.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin replica_data_errors "$@"

itest_cluster 4
DATA=$D/c/data
for i in 0 1 2 3; do itest_start $i; done
itest_wait_ready 0 1 2 3
TAGS=()
for n in 1 2 3; do
  itest_op channel create "flipme.tag$n"
  TAGS+=("flipme.tag$n")
done
itest_wait_converged 30 0 1 2 3

# expect_refused WHAT WORDS [ARGS...]: `trone replica --id 3 ARGS` must exit non-zero within
# 20 s and say WORDS.
expect_refused() {
  local what=$1 words=$2 out rc
  shift 2
  out=$(timeout 20 "$TRONE" replica --id 3 "$@" 2>&1)
  rc=$?
  echo "$out" >>"$D/r3.log"
  [ $rc != 0 ] && [ $rc != 124 ] || itest_fail "$what: replica 3 was not refused (status $rc)"
  echo "$out" | grep -qF -- "$words" ||
    itest_fail "$what: the error does not say '$words': $(echo "$out" | tail -n 1)"
}

# rebuild_and_catch_up: --rebuild starts replica 3 empty; it must reach the others' digest.
rebuild_and_catch_up() {
  local marker
  marker=$(wc -l <"$D/r3.log")
  itest_start 3 -- "$D/rebuild.sh"
  itest_wait_ready 0 1 2 3
  itest_wait_converged 60 0 1 2 3
  tail -n +"$((marker + 1))" "$D/r3.log" | grep -q 'data directory wiped' ||
    itest_fail "replica 3 did not log that --rebuild wiped its store"
}

# itest_start runs "BINARY replica --id I": this wrapper adds --rebuild.
printf '#!/bin/sh\nexec "%s" "$@" --rebuild\n' "$TRONE" >"$D/rebuild.sh"
chmod +x "$D/rebuild.sh"

itest_kill 3
itest_kill 2 # a directory in use is refused as such; this checks the owner of an idle one
expect_refused "another replica's directory" "belongs to replica 2, not 3" --data "$DATA/replica-2"
itest_start 2

# Flip one byte in every copy of a tag LMDB holds (live pages and stale copies alike).
/usr/bin/python3 - "$DATA/replica-3/data.mdb" <<'EOF' || itest_fail "could not corrupt the store"
import sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
hits = 0
at = data.find(b"flipme.tag")
while at >= 0:
    data[at + 3] ^= 0x20
    hits += 1
    at = data.find(b"flipme.tag", at + 1)
if hits == 0:
    sys.exit(1)
open(path, "wb").write(data)
EOF
expect_refused "a corrupt store" "--rebuild"
grep -q 'corrupt' <(tail -n 3 "$D/r3.log") || itest_fail "the refusal does not say corrupt"
rebuild_and_catch_up

itest_op channel create after.rebuild
TAGS+=(after.rebuild)
itest_wait_converged 30 0 1 2 3
itest_kill 3
size=$(stat -c %s "$DATA/replica-3/data.mdb")
truncate -s $((size / 2)) "$DATA/replica-3/data.mdb"
expect_refused "a truncated store" "truncated"
rebuild_and_catch_up

itest_op channel create after.truncate
TAGS+=(after.truncate)
itest_wait_converged 30 0 1 2 3
itest_check_channels "${TAGS[@]}"
for i in 0 1 2 3; do itest_alive $i || itest_fail "replica $i died"; done
itest_pass "another replica's, a corrupt and a truncated data directory were refused at start;" \
  "--rebuild recovered from the peers each time ($ITEST_OPS operations, one digest on 4 replicas)"
