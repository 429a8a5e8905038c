#!/usr/bin/env bash
# Sets up the machine and runs every test: unit, integration over inproc/ipc/tcp, and the
# process-level tests that start and kill real taskmesh processes. Then a release-build smoke run
# of the demo, because optimised builds have miscompiled code that debug builds ran correctly.
# In CI (CI=true), or with TASKMESH_BENCH=quick, the benchmark suite then runs in quick mode: every
# system must run and return correct results; no figure is asserted (docs/BENCHMARKS.md). In CI,
# or with TASKMESH_FUZZ_SECONDS, the codec's fuzz targets then run (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
swift test --skip-build "$@"
swift build -c release --product taskmesh
.build/release/taskmesh demo --jobs 20000
if [[ "${CI:-}" == "true" || "${TASKMESH_BENCH:-}" == "quick" ]]; then
    bash scripts/bench.sh --quick
fi
# The codec under libFuzzer for a bounded time in CI (bash scripts/fuzz.sh SECONDS for longer).
if [[ "${CI:-}" == "true" || -n "${TASKMESH_FUZZ_SECONDS:-}" ]]; then
    bash scripts/fuzz.sh "${TASKMESH_FUZZ_SECONDS:-10}"
fi
