#!/usr/bin/env bash
# test_leader_kill.sh: 4 BFT replicas on loopback keep ordering control operations while their
# leader is SIGKILLed twice: first replica 0 (leader of view 0), then, after 0 was restarted and
# rejoined, the leader of the current view as `trone status --json` reports it. Channels are
# created and clients registered in a loop throughout; every operation must eventually succeed,
# the live replicas must end with one table digest, and `trone channel list` shows every channel.
# Usage: test_leader_kill.sh PATH_TO_TRONE
. "$(dirname "$0")/lib.sh"
itest_begin leader_kill "$@"

itest_cluster 4
for i in 0 1 2 3; do itest_start $i; done
itest_wait_ready 0 1 2 3
[ "$(itest_leader 0 1 2 3)" = 0 ] || itest_fail "leader of the first view is not replica 0"

N=16
TAGS=()
NAMES=()
second=
for i in $(seq 1 $N); do
  case $i in
    4)
      itest_kill 0
      ;;
    8)
      itest_start 0
      itest_wait_ready 0 1 2 3
      # Wait until 0 rejoined (same view and state as the others) before the next fault, so
      # that at most one replica is ever faulty.
      itest_wait_converged 60 0 1 2 3
      second=$(itest_leader 0 1 2 3)
      [ -n "$second" ] || itest_fail "no leader reported after replica 0 rejoined"
      itest_kill "$second"
      ;;
    12)
      itest_start "$second"
      ;;
  esac
  itest_op channel create "lk.ch$i"
  TAGS+=("lk.ch$i")
  if [ $((i % 2)) = 0 ]; then
    itest_key "c$i"
    itest_op register "c$i" "$D/c$i.key"
    NAMES+=("c$i")
  fi
done

# Registrations are in the agreed table: a channel naming every client as publisher is accepted.
publishers=$(IFS=,; echo "${NAMES[*]}")
itest_op channel create lk.final --publishers "$publishers"
TAGS+=(lk.final)

itest_wait_ready 0 1 2 3
itest_wait_converged 60 0 1 2 3
itest_check_channels "${TAGS[@]}"
for i in 0 1 2 3; do itest_alive $i || itest_fail "replica $i died"; done
view=$(itest_field 1 2)
[ "$view" -ge 2 ] || itest_fail "view is $view after two leader kills (want >= 2)"
itest_pass "$ITEST_OPS operations done while killing leaders 0 and $second; 4 replicas agree" \
  "on digest $(itest_field 0 7 | cut -c1-16) in view $view; ${#TAGS[@]} channels listed"
