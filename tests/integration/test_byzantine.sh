#!/usr/bin/env bash
# test_byzantine.sh: 4 BFT replicas, one of them the TEST-ONLY trone-byz (tests/integration/byz)
# whose core's outputs pass through a Byzantine filter. Scenarios, each on a fresh cluster:
#   replica 0 (the first leader) TRONE_BYZ=equivocate: different PRE_PREPAREs to different
#     replicas, votes for digests it never saw; progress needs a view change;
#   replica 0 TRONE_BYZ=mute: connected, answers status, sends no protocol message at all;
#   replica 1 TRONE_BYZ=corrupt: flipped bytes, truncations, forged replica ids and signatures;
#   replica 1 TRONE_BYZ=replay: resends old messages, its own and its peers', later.
# In each, control operations (channels created, a client registered) all complete, the 3
# correct replicas end with one executed seq and table digest and list every channel, their
# processes are still alive, and (but for mute, which sends nothing to reject) they logged
# rejections of the Byzantine replica's messages.
# Usage: test_byzantine.sh PATH_TO_TRONE [PATH_TO_TRONE_BYZ]
#   trone-byz: $TRONE_BYZ_BIN, else the second argument, else next to trone.
#   BYZ_SCENARIOS="1:corrupt" runs only the listed scenarios, BYZ_OPS=N sets the channels
#   created per scenario (12); ITEST_KEEP=1 keeps the logs.
. "$(dirname "$0")/lib.sh"
itest_begin byzantine "$@"
itest_need_byz

OPS=${BYZ_OPS:-12} # channel creates per scenario
SUMMARY=()

# scenario BYZ_ID MODE
scenario() {
  local byz=$1 mode=$2 i correct=()
  for i in 0 1 2 3; do [ "$i" = "$byz" ] || correct+=("$i"); done
  rm -rf "$D"/r*.log "$D/c"
  itest_cluster 4
  for i in 0 1 2 3; do
    if [ "$i" = "$byz" ]; then
      itest_start "$i" TRONE_BYZ="$mode" -- "$TRONE_BYZ_BIN"
    else
      itest_start "$i"
    fi
  done
  itest_wait_ready 0 1 2 3
  grep -q "TEST-ONLY byzantine replica\" mode=$mode" "$D/r$byz.log" ||
    itest_fail "$mode: replica $byz does not log that it runs as TRONE_BYZ=$mode"
  local tags=()
  for i in $(seq 1 $OPS); do
    itest_op channel create "bz.$mode.$i"
    tags+=("bz.$mode.$i")
  done
  itest_key "cl.$mode"
  itest_op register "cl.$mode" "$D/cl.$mode.key"
  itest_op channel create "bz.$mode.pub" --publishers "cl.$mode"
  tags+=("bz.$mode.pub")
  itest_wait_converged 60 "${correct[@]}"
  itest_check_channels "${tags[@]}"
  scenario_verdict "$byz" "$mode" "${correct[@]}"
  itest_cleanup
}

# scenario_verdict BYZ_ID MODE CORRECT_IDS...: the checks after the operations.
scenario_verdict() {
  local byz=$1 mode=$2 i t rejections=0
  shift 2
  for i in "$@"; do
    itest_alive "$i" || itest_fail "$mode: correct replica $i died"
    ! grep -q 'level=fatal' "$D/r$i.log" || itest_fail "$mode: correct replica $i logged fatal"
  done
  grep -q 'msg="byzantine action"' "$D/r$byz.log" || [ "$mode" = mute ] ||
    itest_fail "$mode: replica $byz logged no Byzantine action (the filter did nothing)"
  if [ "$mode" != mute ]; then
    for t in $(seq 1 40); do
      rejections=$(for i in "$@"; do cat "$D/r$i.log"; done |
                   grep -c "msg=\"message rejected\" from=$byz ")
      [ "$rejections" -gt 0 ] && break
      sleep 0.5
    done
    [ "$rejections" -gt 0 ] ||
      itest_fail "$mode: no correct replica logged a rejected message from replica $byz"
  fi
  itest_status >/dev/null
  local view executed
  view=$(itest_field "$1" 2)
  executed=$(itest_field "$1" 5)
  if [ "$mode" = equivocate ] || [ "$mode" = mute ]; then
    [ "$view" -ge 1 ] || itest_fail "$mode: the correct replicas are still in view 0"
  fi
  local alive=dead
  itest_alive "$byz" && alive=alive
  SUMMARY+=("$mode@$byz: view $view seq $executed, $rejections rejections, byz $alive")
}

# BYZ_SCENARIOS="ID:MODE ..." runs a subset (for debugging); the default runs all four.
for s in ${BYZ_SCENARIOS:-0:equivocate 0:mute 1:corrupt 1:replay}; do
  scenario "${s%%:*}" "${s#*:}"
done
itest_pass "$(IFS=';'; echo "${SUMMARY[*]}")"
