#!/usr/bin/env bash
# The benchmark suite in one command: installs what it needs, builds every system, starts Redis,
# runs every system on this machine in one run and prints each figure with its ratio to raw
# libzmq and to Celery (docs/BENCHMARKS.md).
#
#   bash scripts/bench.sh            full mode: the figures of docs/BENCHMARKS.md (about 7 minutes on 2 cores)
#   bash scripts/bench.sh --quick    small N, every system, sanity checks only (a few minutes)
#
# Other options go to the runner (Benchmarks/runner/bench.py --help), e.g. --scale 0.5 or
# --only raw-b,taskmesh-direct. Exits non-zero only when a run is broken (a job missing or wrong,
# a process that did not start), never because a figure missed its target.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/Benchmarks"
OUT="$BENCH/out"
VENV="$BENCH/.venv"
CBIN="$BENCH/.build/c"
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ folders next to the sources

# Every process this script or the runner starts is stopped on exit, by its id.
REDIS_PID=""
RUNNER_PID=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$RUNNER_PID" ]] && kill -0 "$RUNNER_PID" 2>/dev/null; then
        kill -TERM "$RUNNER_PID" 2>/dev/null || true
        wait "$RUNNER_PID" 2>/dev/null || true
    fi
    if [[ -f "$OUT/pids" ]]; then  # whatever the runner could not stop itself
        while read -r pid; do
            [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
        done < "$OUT/pids"
        rm -f "$OUT/pids"
    fi
    if [[ -n "$REDIS_PID" ]] && kill -0 "$REDIS_PID" 2>/dev/null; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { printf '\n-- %s\n' "$*"; }

# 1. Debian packages: compilers and libraries for the C baselines, Redis for Celery.
step "system packages"
missing=()
for pkg in gcc libzmq3-dev libssl-dev redis-server python3-venv git; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "ok"

# 2. Python virtualenv for pyzmq, Celery and the chart.
step "python virtualenv ($VENV)"
if ! "$VENV/bin/python" -c "import zmq, celery, redis, matplotlib" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check pyzmq celery redis matplotlib
fi
echo "ok"

# 3. The raw libzmq C programs.
step "C baselines (gcc -O2 -lzmq)"
mkdir -p "$CBIN"
for program in raw_worker raw_sink raw_client; do
    gcc -O2 -Wall -o "$CBIN/$program" "$BENCH/c/$program.c" -lzmq -lcrypto -lm
done
echo "ok"

# 4. TaskMesh, release: the benchmark client and the taskmesh command, from the Benchmarks
#    package (its own .build, so it never waits on a build in the main package's .build).
step "swift build -c release (Benchmarks package: tmbench, taskmesh)"
JOBS=()
[[ -n "${BENCH_BUILD_JOBS:-}" ]] && JOBS=(-j "$BENCH_BUILD_JOBS")
build() {  # a source edited during the build (someone working in the tree) gets two more tries
    local try log="$OUT/swift-build.log"
    for try in 1 2 3; do
        if swift build -c release --package-path "$BENCH" "${JOBS[@]}" --product "$1" 2>&1 | tee "$log"; then
            return 0
        fi
        grep -q "was modified during the build" "$log" || return 1
        echo "(a source file changed during the build: building again)"
    done
    return 1
}
# SwiftPM plans a path dependency's sources once; a file added to TaskMesh since the last build
# would be missed unless the manifest looks changed.
touch "$BENCH/Package.swift"
build tmbench
build taskmesh
SWIFTBIN="$(swift build -c release --package-path "$BENCH" --show-bin-path)"

# 5. Redis on a free loopback port, for Celery.
step "redis-server"
REDIS_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    --logfile "$OUT/redis.log" &
REDIS_PID=$!
for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping >/dev/null
echo "listening on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"

# 6. The runner.
step "running"
"$VENV/bin/python" "$BENCH/runner/bench.py" \
    --cbin "$CBIN" --swiftbin "$SWIFTBIN" --python "$VENV/bin/python" \
    --redis-url "redis://127.0.0.1:$REDIS_PORT" --redis-pid "$REDIS_PID" "$@" &
RUNNER_PID=$!
set +e
wait "$RUNNER_PID"
status=$?
set -e
RUNNER_PID=""
exit "$status"
