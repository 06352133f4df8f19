#!/usr/bin/env bash
# test_replica_restart_disk.sh: replicas restart from their data directories (issue 4,
# docs/PROTOCOL.md section 11). For a 4-replica BFT cluster and then a 4-replica CFT cluster:
# 1. Cycles: while a client keeps creating channels, one replica picked at random is killed
#    with SIGKILL at a random moment and restarted a random moment later. It must log that it
#    restored its state from disk, and once the load stops all 4 must report the same
#    executed seq and table digest (`trone status`).
# 2. The whole cluster is killed with SIGKILL at once and restarted: every control operation a
#    client saw succeed is still there, nothing executed is lost, and the cluster orders more.
# The random choices come from a seed printed first (TRONE_TEST_SEED=N replays them).
# Usage: test_replica_restart_disk.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin replica_restart_disk "$@"

CYCLES=${TRONE_TEST_CYCLES:-3}
SEED=${TRONE_TEST_SEED:-$(( $(date +%s) % 32768 ))}
RANDOM=$SEED
echo "seed=$SEED cycles=$CYCLES" >&2
LOAD_PID=

# cluster MODEL: a fresh 4-replica cluster of that fault model in $D/MODEL.
cluster() {
  "$TRONE" init "$D/$1" --replicas 4 --fault-model "$1" --force >"$D/init.log" 2>&1 ||
    itest_fail "trone init $1 failed: $(tail -n 1 "$D/init.log")"
  export TRONE_CLUSTER=$D/$1/cluster.conf
}

# A client creating channels PREFIX.1, PREFIX.2, ... until $D/stop exists; each one it saw
# succeed is appended to $D/agreed.txt.
load_loop() {
  local n=0
  while [ ! -f "$D/stop" ] && [ $n -lt 5000 ]; do
    n=$((n + 1))
    if timeout 45 "$TRONE" channel create "$1.$n" --timeout 30 >>"$D/load.log" 2>&1; then
      echo "$1.$n" >>"$D/agreed.txt"
    fi
  done
}

load_start() {
  rm -f "$D/stop"
  load_loop "$1" &
  LOAD_PID=$!
  ITEST_EXTRA=("$LOAD_PID")
}

# Stops the load (the loop ends after its current operation, at most 45 s).
load_stop() {
  touch "$D/stop"
  wait "$LOAD_PID" 2>/dev/null
  ITEST_EXTRA=()
  LOAD_PID=
}

random_pause() { sleep "0.$((RANDOM % 9 + 1))"; }

agreed_count() { [ -f "$D/agreed.txt" ] && wc -l <"$D/agreed.txt" || echo 0; }

check_no_persist_error() {
  if grep -l 'cannot persist' "$D"/r*.log >/dev/null 2>&1; then
    itest_fail "a replica could not persist its state: $(grep -h 'cannot persist' "$D"/r*.log |
      head -n 1)"
  fi
}

run_model() {
  local model=$1 cycle victim marker before executed0 executed1 i
  cluster "$model"
  rm -f "$D/agreed.txt"
  for i in 0 1 2 3; do itest_start $i; done
  itest_wait_ready 0 1 2 3
  itest_op channel create "$model.first"
  echo "$model.first" >>"$D/agreed.txt"

  for cycle in $(seq 1 "$CYCLES"); do
    victim=$((RANDOM % 4))
    before=$(agreed_count)
    load_start "$model.c$cycle"
    random_pause
    random_pause
    itest_kill "$victim"
    marker=$(wc -l <"$D/r$victim.log")
    random_pause
    itest_start "$victim"
    random_pause
    random_pause
    load_stop
    itest_wait_ready 0 1 2 3
    itest_wait_converged 90 0 1 2 3
    tail -n +"$((marker + 1))" "$D/r$victim.log" | grep -q 'restored checkpoint' ||
      itest_fail "$model cycle $cycle: replica $victim did not restore its state from disk"
    [ "$(agreed_count)" -gt "$before" ] ||
      itest_fail "$model cycle $cycle: no operation succeeded around the restart of $victim"
    echo "$model cycle $cycle: replica $victim killed and restored; executed" \
      "$(itest_field 0 5), $(agreed_count) operations agreed" >&2
  done

  # The whole cluster at once.
  load_start "$model.w"
  random_pause
  random_pause
  load_stop
  itest_wait_converged 60 0 1 2 3
  executed0=$(itest_field 0 5)
  for i in 0 1 2 3; do itest_kill $i; done
  for i in 0 1 2 3; do itest_start $i; done
  itest_wait_ready 0 1 2 3
  itest_wait_converged 60 0 1 2 3
  executed1=$(itest_field 0 5)
  [ "$executed1" -ge "$executed0" ] ||
    itest_fail "$model: executed seq went back from $executed0 to $executed1 after a full restart"
  mapfile -t agreed <"$D/agreed.txt"
  itest_check_channels "${agreed[@]}"
  itest_op channel create "$model.after"
  itest_wait_converged 60 0 1 2 3
  check_no_persist_error
  for i in 0 1 2 3; do itest_alive $i || itest_fail "$model: replica $i died"; done
  echo "$model: full restart kept all ${#agreed[@]} agreed operations (executed $executed0)" >&2
  TOTAL_AGREED=$((TOTAL_AGREED + ${#agreed[@]}))
  for i in 0 1 2 3; do itest_kill $i; done
}

TOTAL_AGREED=0
run_model bft
run_model cft
itest_pass "bft and cft: $CYCLES random SIGKILL/restart cycles each restored from disk and" \
  "converged; full-cluster SIGKILL kept all $TOTAL_AGREED agreed operations (seed $SEED)"
