#!/usr/bin/env bash
# Runs the chaos tests (Tests/TaskMeshTests/Processes/ChaosProcessTests.swift) as a soak: every
# role in its own network namespace, a seeded plan of faults per run, invariants checked and
# reported after each. Needs root (network namespaces) and what scripts/setup.sh installs.
#   bash scripts/chaos.sh [SEEDS [JOBS_PER_CLIENT [FAULTS_PER_RUN]]]
# Defaults: seeds 1 to 25, 20,000 jobs per client, 12 faults per run: in each mode 25 runs of
# 40,000 jobs, 1,000,000 jobs a mode. Replay one run with its seed: bash scripts/chaos.sh 7
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
TASKMESH_CHAOS_SEEDS="${1:-$(seq -s, 1 25)}" TASKMESH_CHAOS_JOBS="${2:-20000}" TASKMESH_CHAOS_FAULTS="${3:-12}" \
    swift test --skip-build --filter ChaosProcessTests 2>&1 | grep -E '^(chaos |  |✔|✘|↳)'
