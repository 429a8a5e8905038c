#!/usr/bin/env bash
# Sets up the machine and runs every test: unit, integration over inproc/ipc/tcp, and the
# process-level tests that start and kill real taskmesh processes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
swift test --skip-build "$@"
