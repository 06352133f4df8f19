#!/usr/bin/env bash
# demo.sh: sets up, builds (build/), then runs `trone demo`: a local cluster with publishers
# and subscribers, with the test-only Byzantine replica (build/trone-byz) for the Byzantine
# round. Extra arguments go to `trone demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"${JOBS:-2}"
exec build/trone demo --byz build/trone-byz "$@"
