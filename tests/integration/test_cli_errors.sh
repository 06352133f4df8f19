#!/usr/bin/env bash
# test_cli_errors.sh TRONE: bad command lines and bad cluster or key files get a one-line error
# ("trone ...: reason") and exit 2 (usage) or 1 (bad file, operational failure), never a crash
# (exit >= 128) and never a hang. Runs the real binary in a fresh temporary directory.
set -u
TRONE=${1:?usage: test_cli_errors.sh path/to/trone}
[ -x "$TRONE" ] || { echo "not an executable: $TRONE"; exit 1; }
T=$(mktemp -d /tmp/trone-cli-errors.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
unset TRONE_CLUSTER TRONE_KEY
FAILED=0
CHECKED=0

fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }

# expect CODE [FRAGMENT] -- ARGS...: runs trone ARGS, wants exit CODE and exactly one
# non-log line on stderr, starting with "trone" (and holding FRAGMENT if given).
expect() {
  local want=$1 fragment=$2; shift 3
  local rc lines
  timeout 30 "$TRONE" "$@" >"$T/out" 2>"$T/err"; rc=$?
  CHECKED=$((CHECKED + 1))
  lines=$(grep -av '^level=' "$T/err")
  if [ "$rc" -ge 124 ]; then
    fail "trone $* crashed or hung (exit $rc): $(tail -n 3 "$T/err" | tr '\n' '|')"; return
  fi
  [ "$rc" -eq "$want" ] || { fail "trone $*: exit $rc, want $want: $lines"; return; }
  [ "$(printf '%s\n' "$lines" | grep -ac .)" -eq 1 ] ||
    { fail "trone $*: want one error line, got: $(printf '%s' "$lines" | tr '\n' '|')"; return; }
  case "$lines" in trone*) ;; *) fail "trone $*: error does not start with 'trone': $lines";; esac
  if printf '%s' "$lines" | LC_ALL=C grep -aq '[^[:print:]]'; then
    fail "trone $*: error holds unprintable bytes: $lines"
  fi
  if [ -n "$fragment" ] && ! printf '%s' "$lines" | grep -aqF -- "$fragment"; then
    fail "trone $*: error lacks '$fragment': $lines"
  fi
}

# ok ARGS...: trone ARGS succeeds and prints something on stdout (help and version).
ok() {
  local rc
  timeout 30 "$TRONE" "$@" >"$T/out" 2>"$T/err"; rc=$?
  CHECKED=$((CHECKED + 1))
  [ "$rc" -eq 0 ] && [ -s "$T/out" ] || fail "trone $*: exit $rc, stdout $(wc -c <"$T/out") bytes"
}

# ---- Help answers, then the command line's errors ----
ok --help
ok --version
ok help init
ok init --help
ok keygen --help
expect 2 "no command" -- 
expect 2 "unknown command 'frobnicate'" -- frobnicate
expect 2 "unknown command" -- help frobnicate
expect 2 "needs a directory" -- init
expect 2 "needs --replicas" -- init c
expect 2 "--replicas must be" -- init c --replicas 0
expect 2 "--replicas must be" -- init c --replicas 14
expect 2 "--replicas must be" -- init c --replicas 4x
expect 2 "--replicas needs a value" -- init c --replicas
expect 2 "--fault-model must be bft or cft" -- init c --replicas 4 --fault-model paxos
expect 2 "BFT needs n >= 3f+1: 3 replicas cannot tolerate f=1" -- init c --replicas 3 --f 1
expect 2 "CFT needs n >= 2f+1: 2 replicas cannot tolerate f=1" -- \
  init c --replicas 2 --fault-model cft --f 1
expect 2 "unknown option '--bogus'" -- init c --replicas 4 --bogus
expect 2 "unexpected argument" -- init c d --replicas 4
expect 2 "lists 1 addresses for 4 replicas" -- init c --replicas 4 --addresses 127.0.0.1:1
expect 2 "bad address" -- init c --replicas 1 --addresses 127.0.0.1
expect 2 "appears twice" -- init c --replicas 2 --addresses a:1,a:1
expect 2 "not both" -- init c --replicas 1 --addresses a:1 --base-port 9000
expect 2 "no room" -- init c --replicas 4 --base-port 65534
[ ! -e c ] || fail "a refused init left $T/c behind"
expect 2 "needs a NAME" -- keygen
expect 2 "bad name" -- keygen 'bad/name'
expect 2 "--out needs" -- keygen alice --out

# ---- An existing cluster or key is never overwritten ----
"$TRONE" init c --replicas 4 >/dev/null 2>&1 || fail "trone init c --replicas 4 failed"
expect 1 "already exists" -- init c --replicas 4
"$TRONE" keygen alice >/dev/null 2>&1 || fail "trone keygen alice failed"
expect 1 "already exists" -- keygen alice
GOOD=$T/c/cluster.conf

# ---- Bad cluster and key files, through every command that loads them ----
bad() { # bad NAME: a copy of the good cluster file to spoil
  cp "$GOOD" "$T/$1.conf"; printf '%s' "$T/$1.conf"
}
f=$(bad section); sed -i 's/^\[replica 2\]/[replicas 2]/' "$f"
f=$(bad key); sed -i 's/^f = /colour = blue\nf = /' "$f"
f=$(bad missing); sed -i 's/^\[replica 2\]/[replica 7]/' "$f"
f=$(bad duplicate); sed -i 's/^\[replica 2\]/[replica 1]/' "$f"
f=$(bad address); sed -i '0,/^address = .*/s//address = 127.0.0.1:99999/' "$f"
f=$(bad hex); sed -i '0,/^key = /s//key = 12/' "$f"
f=$(bad quorum); sed -i 's/^f = 1/f = 2/' "$f"
f=$(bad syntax); sed -i 's/^f = 1/f 1/' "$f"
f=$(bad empty); : >"$f"
f=$(bad long); head -c 5000 /dev/zero | tr '\0' x >>"$f"
f=$(bad garbage); head -c 3000 /dev/urandom >"$f"
printf 'name = x\npublic = 00\n' >"$T/bad.key"

pending() { # pending CMD...: true while the subcommand is still a placeholder
  timeout 30 "$TRONE" "$@" --help 2>&1 | grep -q "not yet available"
}
for cmd in "status" "channel list" "replica --id 0"; do
  # shellcheck disable=SC2086
  if pending $cmd; then
    echo "SKIP: trone $cmd is not built yet"
    continue
  fi
  for name in section key missing duplicate address hex quorum syntax empty long garbage; do
    # shellcheck disable=SC2086
    expect 1 "$T/$name.conf" -- $cmd --cluster "$T/$name.conf"
  done
  # shellcheck disable=SC2086
  expect 1 "$T/nonexistent.conf" -- $cmd --cluster "$T/nonexistent.conf"
  if [ "$cmd" != "replica --id 0" ]; then
    # shellcheck disable=SC2086
    expect 1 "$T/bad.key" -- $cmd --cluster "$GOOD" --key "$T/bad.key"
  fi
done

echo "$CHECKED checks, $FAILED failed"
[ "$FAILED" -eq 0 ]
