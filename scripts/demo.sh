#!/usr/bin/env bash
# Sets up the machine and runs the embedded demo: a client and workers in one process (inproc).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift run -c release taskmesh demo "$@"
