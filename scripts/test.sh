#!/usr/bin/env bash
# test.sh: sets up, then builds and runs every test: a release build (build/), an ASan+UBSan
# build (build-asan/), the dependency-direction check (STYLE.md rule 4), and each libFuzzer
# target for FUZZ_SECONDS (default 20) with clang (build-fuzz/). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-2}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
FAILED=()

step() { echo; echo "==== $* ===="; }

step "setup"
./scripts/setup.sh

step "dependency direction (STYLE.md rule 4)"
# Only src/rt/ and adapter files named *_io.c may include the I/O libraries.
violations=$(grep -rnE '#[[:space:]]*include[[:space:]]*<(uv|lmdb|usrsctp|microhttpd)\.h>' \
               src include 2>/dev/null | grep -vE '^src/rt/|^[^:]*_io\.c:' || true)
if [ -n "$violations" ]; then
  echo "these files include an I/O library outside src/rt/ and *_io.c:"
  echo "$violations"
  FAILED+=("dependency-direction")
else
  echo "ok"
fi

step "release build (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$JOBS"
step "tests (build/)"
ctest --test-dir build --output-on-failure -j"$JOBS" || FAILED+=("ctest-release")

step "ASan+UBSan build (build-asan/)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTRONE_SANITIZE=ON
cmake --build build-asan -j"$JOBS"
step "tests (build-asan/)"
# Multi-process integration tests run in the release build; ASan covers unit, sim and interop.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  ctest --test-dir build-asan --output-on-failure -j"$JOBS" -LE integration ||
  FAILED+=("ctest-asan")

step "fuzz targets (build-fuzz/, ${FUZZ_SECONDS}s each)"
targets=$(find fuzz -maxdepth 1 -name 'fuzz_*.c' | sort)
if [ -z "$targets" ]; then
  echo "no fuzz targets yet"
else
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRONE_FUZZ=ON \
    -DTRONE_TESTS=OFF
  cmake --build build-fuzz -j"$JOBS"
  for source in $targets; do
    name=$(basename "$source" .c)
    corpus="build-fuzz/corpus/$name"
    mkdir -p "$corpus"
    echo "-- $name"
    seeds=()
    # Inputs that once failed (fuzz/seeds/NAME/) run first, every time.
    [ ! -d "fuzz/seeds/$name" ] || seeds=("$ROOT/fuzz/seeds/$name")
    if ! (cd build-fuzz && "./fuzz/$name" -max_total_time="$FUZZ_SECONDS" -print_final_stats=0 \
            "$ROOT/$corpus" "${seeds[@]}" >"$name.log" 2>&1); then
      tail -n 30 "build-fuzz/$name.log"
      FAILED+=("$name")
    else
      grep -E '^(#[0-9]+|Done)' "build-fuzz/$name.log" | tail -n 1 || true
    fi
  done
fi

echo
if [ "${#FAILED[@]}" -ne 0 ]; then
  echo "test.sh: FAILED: ${FAILED[*]}"
  exit 1
fi
echo "test.sh: all passed"
