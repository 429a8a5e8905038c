#!/usr/bin/env python3
"""The TaskMesh benchmark runner: every system, every workload, one machine, one run.

Started by scripts/bench.sh (which installs and builds everything first); see docs/BENCHMARKS.md.
It starts each system's worker processes (and sink, broker or Redis-backed Celery workers), runs
that system's own client once per measurement (the client prints one JSON line), checks that every
job came back with the right result, and reports each figure with its ratio to raw libzmq in the
same topology and to Celery. Nothing here asserts a time: a run fails only when it is broken (a
job missing or wrong, a process that did not start, a client that crashed or hung).

Adding a system is one entry in SYSTEMS: a class that starts its workers and names its client.
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import queue
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

RUNNER = Path(__file__).resolve().parent
BENCH = RUNNER.parent
ROOT = BENCH.parent
PYDIR = BENCH / "python"


# ---------------------------------------------------------------------------------------------
# Workloads and how many jobs each measurement runs


@dataclass(frozen=True)
class Workload:
    key: str
    label: str
    op: str  # echo | sha256
    size: int  # payload bytes


WORKLOADS = [
    Workload("echo-16B", "no-op, 16 B", "echo", 16),
    Workload("echo-1KiB", "no-op, 1 KiB", "echo", 1024),
    Workload("echo-64KiB", "no-op, 64 KiB", "echo", 65536),
    Workload("sha256-64KiB", "sha256 of 64 KiB", "sha256", 65536),
]
WORKER_COUNTS = (1, 2)
LONG_RUN = ("echo-16B", 1)  # the throughput run whose RSS is read at the checkpoint and the end
WINDOW = 10_000  # jobs in flight at most, for every system (= TaskMesh's default high-water mark)
# The systems the throughput targets compare, run one after another in each of PAIR_ROUNDS rounds
# (no-op 16 B, 1 worker): on a shared machine one run of a system moves by a fifth or more from
# minute to minute, so a target's ratio is the median of ratios measured next to each other.
PAIR_SYSTEMS = ("raw-b", "taskmesh-direct", "taskmesh-reliable")
PAIR_ROUNDS = 3
PAIR_LABELS = {("taskmesh-direct", "raw-b"): "direct vs raw (b)", ("taskmesh-reliable", "taskmesh-direct"): "reliable vs direct"}

# Jobs per measurement. "fast" is every ZeroMQ-based system, "slow" is Celery (~1000x slower).
PLANS = {
    "full": {
        "fast": dict(tput={"echo-16B": 200_000, "echo-1KiB": 200_000, "echo-64KiB": 10_000, "sha256-64KiB": 10_000},
                     long=1_000_000, checkpoint=100_000, lat=10_000, warmup_tput=5_000, warmup_lat=500,
                     rounds=300_000),
        "slow": dict(tput={"echo-16B": 2_000, "echo-1KiB": 2_000, "echo-64KiB": 500, "sha256-64KiB": 500},
                     long=2_000, checkpoint=0, lat=300, warmup_tput=50, warmup_lat=20),
    },
    "quick": {
        "fast": dict(tput={"echo-16B": 20_000, "echo-1KiB": 20_000, "echo-64KiB": 2_000, "sha256-64KiB": 2_000},
                     long=20_000, checkpoint=2_000, lat=1_000, warmup_tput=1_000, warmup_lat=100,
                     rounds=20_000),
        "slow": dict(tput={"echo-16B": 100, "echo-1KiB": 100, "echo-64KiB": 50, "sha256-64KiB": 50},
                     long=100, checkpoint=0, lat=30, warmup_tput=10, warmup_lat=5),
    },
}


@dataclass
class Measurement:
    workload: Workload
    workers: int
    kind: str  # tput | lat
    count: int
    warmup: int
    checkpoint: int


def measurements(plan, workers, scale, keys=()):
    """The measurements of one system with `workers` worker processes, in run order (only the
    workloads named in `keys`, when given)."""
    out = []
    for w in WORKLOADS:
        if keys and w.key not in keys:
            continue
        long = (w.key, workers) == LONG_RUN
        count = plan["long"] if long else plan["tput"][w.key]
        checkpoint = plan["checkpoint"] if long else 0
        out.append(Measurement(w, workers, "tput", max(1, int(count * scale)), plan["warmup_tput"],
                               int(checkpoint * scale)))
        if workers == 1:
            out.append(Measurement(w, workers, "lat", max(1, int(plan["lat"] * scale)), plan["warmup_lat"], 0))
    return out


# ---------------------------------------------------------------------------------------------
# Processes: every one started here is tracked, written to a pid file for scripts/bench.sh's
# trap, and stopped by id.


class Processes:
    def __init__(self, log_dir, pid_file):
        self.log_dir = log_dir
        self.pid_file = pid_file
        self.live = []
        self.lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)

    def _write_pids(self):
        self.pid_file.write_text("".join(f"{p.pid}\n" for p in self.live))

    def spawn(self, name, cmd, *, ready=True, timeout=60, env=None, cwd=None):
        """Starts `cmd`; with `ready`, waits for its "ready key=value ..." line and returns the
        keys as a dict. Standard error (and standard output after the ready line) go to a log."""
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env, cwd=cwd)
        with self.lock:
            self.live.append(proc)
            self._write_pids()
        lines = queue.Queue()

        def pump():
            for raw in proc.stdout:
                lines.put(raw.decode(errors="replace"))
                log.write(raw)
                log.flush()
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        info = {}
        if ready:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    line = None
                    if time.monotonic() < deadline:
                        continue
                if line is None:
                    self.stop(proc)
                    raise RuntimeError(f"{name} did not print its ready line (see {self.log_dir / (name + '.log')})")
                if line.startswith("ready"):
                    info = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
                    break
        return proc, info

    def stop(self, proc, grace=10):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with self.lock:
            if proc in self.live:
                self.live.remove(proc)
            self._write_pids()

    def stop_all(self):
        for proc in list(reversed(self.live)):
            self.stop(proc, grace=5)


# ---------------------------------------------------------------------------------------------
# Systems. Each starts its workers (`start`, returning a Cluster) and names its client command
# (`client`); the runner adds the measurement's options to that command.


@dataclass
class Cluster:
    procs: list
    info: dict
    watch: dict  # name -> pid, whose RSS the client reads


class Env:
    """Paths and shared state every system uses."""

    def __init__(self, args, processes):
        self.args = args
        self.processes = processes
        self.cbin = Path(args.cbin)
        self.swiftbin = Path(args.swiftbin)
        self.python = args.python
        self.out = Path(args.out)
        self.workloads = tuple(k for k in getattr(args, "workloads", "").split(",") if k)
        self.counter = 0

    def name(self, prefix):
        self.counter += 1
        return f"{self.counter:03d}-{prefix}"


class System:
    key = ""
    label = ""
    short = ""  # the chart's label
    baseline = "raw-a"  # the raw libzmq topology this system's ratios refer to
    speed = "fast"
    note = ""

    def unavailable(self, env):
        """Why this system cannot run here, or None."""
        return None

    def start(self, env, workers):
        return Cluster([], {}, {})

    def client(self, env, cluster, workers):
        raise NotImplementedError


class RawZMQ(System):
    def __init__(self, shape):
        self.shape = shape
        self.key = f"raw-{shape}"
        self.baseline = self.key
        if shape == "a":
            self.label = "raw libzmq C (a)"
            self.short = "raw C\n(a)"
            self.note = "client PUSH -> worker PULL; worker PUSH -> client PULL"
        else:
            self.label = "raw libzmq C (b)"
            self.short = "raw C\n(b)"
            self.note = "client PUSH -> worker PULL; worker PUSH -> sink PULL; sink ROUTER -> client DEALER"

    def start(self, env, workers):
        procs, watch, jobs, results = [], {}, [], []
        worker_args = ["a"]
        if self.shape == "b":
            sink, info = env.processes.spawn(env.name("raw-sink"), [str(env.cbin / "raw_sink")])
            procs.append(sink)
            watch["sink"] = sink.pid
            results = [info["clients"]]
            worker_args = ["b", info["results"]]
        for i in range(workers):
            proc, info = env.processes.spawn(env.name(f"raw-worker-{self.shape}"), [str(env.cbin / "raw_worker")] + worker_args)
            procs.append(proc)
            watch[f"worker{i + 1}"] = proc.pid
            jobs.append(info["jobs"])
            if self.shape == "a":
                results.append(info["results"])
        return Cluster(procs, {"jobs": ",".join(jobs), "results": ",".join(results)}, watch)

    def client(self, env, cluster, workers):
        return [str(env.cbin / "raw_client"), "--shape", self.shape,
                "--jobs", cluster.info["jobs"], "--results", cluster.info["results"]]


class PyZMQ(System):
    def __init__(self, style):
        self.style = style
        self.key = f"pyzmq-{style}"
        self.label = "pyzmq asyncio, future per job" if style == "asyncio" else "pyzmq blocking"
        self.short = "pyzmq\nasyncio" if style == "asyncio" else "pyzmq\nblocking"
        self.note = "shape (a), pyzmq worker"

    def start(self, env, workers):
        procs, watch, jobs, results = [], {}, [], []
        for i in range(workers):
            proc, info = env.processes.spawn(env.name("pyzmq-worker"), [env.python, str(PYDIR / "zmq_bench.py"), "worker"])
            procs.append(proc)
            watch[f"worker{i + 1}"] = proc.pid
            jobs.append(info["jobs"])
            results.append(info["results"])
        return Cluster(procs, {"jobs": ",".join(jobs), "results": ",".join(results)}, watch)

    def client(self, env, cluster, workers):
        return [env.python, str(PYDIR / "zmq_bench.py"), self.style,
                "--jobs", cluster.info["jobs"], "--results", cluster.info["results"]]


class Celery(System):
    key = "celery"
    label = "Celery + Redis (solo)"
    short = "Celery\n+ Redis"
    speed = "slow"
    note = "celery worker -P solo per process, Redis broker and result backend"

    def unavailable(self, env):
        if not env.args.redis_url:
            return "no Redis server (scripts/bench.sh starts one)"
        return None

    def environment(self, env):
        return dict(os.environ, BENCH_REDIS_URL=env.args.redis_url, PYTHONPATH=str(PYDIR))

    def start(self, env, workers):
        subprocess.run([shutil.which("redis-cli") or "redis-cli", "-u", env.args.redis_url, "flushall"],
                       check=True, capture_output=True)
        procs, watch = [], {}
        celery = str(Path(env.python).parent / "celery")
        for i in range(workers):
            name = env.name("celery-worker")
            proc, _ = env.processes.spawn(name, [
                celery, "-A", "celery_app", "worker", "-P", "solo", "-c", "1", "-n", f"w{i + 1}-{name}@bench",
                "--without-gossip", "--without-mingle", "--loglevel=warning"],
                ready=False, env=self.environment(env), cwd=str(PYDIR))
            procs.append(proc)
            watch[f"worker{i + 1}"] = proc.pid
        if env.args.redis_pid:
            watch["redis"] = env.args.redis_pid
        return Cluster(procs, {}, watch)

    def client(self, env, cluster, workers):
        return [env.python, str(PYDIR / "celery_bench.py"), "--workers", str(workers)]

    def client_env(self, env):
        return self.environment(env)


class TaskMeshLocal(System):
    key = "taskmesh-local"
    label = "TaskMesh local (in-process)"
    short = "TaskMesh\nlocal"
    note = "client, sink and workers in one process over inproc; workers = in-process Worker instances"

    def client(self, env, cluster, workers):
        return [str(env.swiftbin / "tmbench"), "--mode", "local", "--workers", str(workers)]


def write_topology(env, name, text):
    path = env.out / name
    path.write_text(text)
    return str(path)


class TaskMeshDirect(System):
    key = "taskmesh-direct"
    label = "TaskMesh direct (tcp)"
    short = "TaskMesh\ndirect"
    baseline = "raw-b"
    note = "taskmesh sink + taskmesh worker processes, tmbench client (library API)"

    def start(self, env, workers):
        topology = write_topology(env, "direct.yaml", f"""mode: direct
sink:
  results:
    bind: tcp://127.0.0.1:0
  clients:
    bind: tcp://127.0.0.1:0
worker:
  bind: tcp://127.0.0.1:0
  concurrency: {env.args.concurrency}
""")
        taskmesh = str(env.swiftbin / "taskmesh")
        sink, info = env.processes.spawn(env.name("taskmesh-sink"), [taskmesh, "sink", "-t", topology, "--log-level", "warning"])
        procs, watch = [sink], {"sink": sink.pid}
        for i in range(workers):
            proc, _ = env.processes.spawn(env.name("taskmesh-worker"), [
                taskmesh, "worker", "-t", topology, "--sink", info["results"], "--log-level", "warning"])
            procs.append(proc)
            watch[f"worker{i + 1}"] = proc.pid
        return Cluster(procs, {"clients": info["clients"]}, watch)

    def client(self, env, cluster, workers):
        return [str(env.swiftbin / "tmbench"), "--mode", "direct", "--sink", cluster.info["clients"],
                "--workers", str(workers)]


class TaskMeshReliable(System):
    key = "taskmesh-reliable"
    label = "TaskMesh reliable (broker)"
    short = "TaskMesh\nreliable"
    baseline = "raw-b"
    note = "taskmesh broker + taskmesh worker processes, tmbench client; compared with shape (b), the nearest raw shape"

    def unavailable(self, env):
        taskmesh = env.swiftbin / "taskmesh"
        probe = subprocess.run([str(taskmesh), "help", "broker"], capture_output=True)
        if probe.returncode != 0:
            return "not yet available (this build of taskmesh has no broker)"
        probe = subprocess.run([str(env.swiftbin / "tmbench"), "--mode", "reliable"], capture_output=True, text=True)
        if "reliable mode needs --broker" not in probe.stderr:
            return "not yet available (tmbench was built without reliable mode)"
        return None

    def start(self, env, workers):
        topology = write_topology(env, "reliable.yaml", f"""mode: reliable
broker:
  clients:
    bind: tcp://127.0.0.1:0
  workers:
    bind: tcp://127.0.0.1:0
worker:
  concurrency: {env.args.concurrency}
""" + ("" if env.args.reliable_prefetch is None else f"  prefetch: {env.args.reliable_prefetch}\n"))
        taskmesh = str(env.swiftbin / "taskmesh")
        broker, info = env.processes.spawn(env.name("taskmesh-broker"), [taskmesh, "broker", "-t", topology, "--log-level", "warning"])
        procs, watch = [broker], {"broker": broker.pid}
        for i in range(workers):
            proc, _ = env.processes.spawn(env.name("taskmesh-worker"), [
                taskmesh, "worker", "-t", topology, "--broker", info["workers"], "--log-level", "warning"])
            procs.append(proc)
            watch[f"worker{i + 1}"] = proc.pid
        return Cluster(procs, {"clients": info["clients"]}, watch)

    def client(self, env, cluster, workers):
        return [str(env.swiftbin / "tmbench"), "--mode", "reliable", "--broker", cluster.info["clients"],
                "--workers", str(workers)]


# The systems, in run order. Baselines first, so every later row has its reference.
SYSTEMS = [
    RawZMQ("a"),
    RawZMQ("b"),
    PyZMQ("blocking"),
    PyZMQ("asyncio"),
    Celery(),
    TaskMeshLocal(),
    TaskMeshDirect(),
    TaskMeshReliable(),
]


# ---------------------------------------------------------------------------------------------
# Running


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_counters(pid):
    """(CPU seconds, context switches) of a whole process, all its threads; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
        switches = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            switches += int(line.split()[1])
            except OSError:
                pass
        return cpu, switches
    except (OSError, IndexError, ValueError):
        return None


def children_counters():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime, usage.ru_nvcsw + usage.ru_nivcsw


def run_measurement(env, system, cluster, m):
    cmd = system.client(env, cluster, m.workers) + [
        "--kind", m.kind, "--op", m.workload.op, "--size", str(m.workload.size), "--count", str(m.count),
        "--window", str(WINDOW), "--warmup", str(m.warmup), "--checkpoint", str(m.checkpoint),
        "--watch", ",".join(f"{k}={v}" for k, v in cluster.watch.items()),
    ]
    rate = 100 if system.speed == "slow" else 1000
    timeout = 120 + m.count / rate + m.warmup / rate
    record = {
        "system": system.key, "label": system.label, "workload": m.workload.key, "op": m.workload.op,
        "size": m.workload.size, "workers": m.workers, "kind": m.kind, "count": m.count,
        "load_before": os.getloadavg()[0], "status": "ok",
    }
    client_env = system.client_env(env) if hasattr(system, "client_env") else None
    log = env.processes.log_dir / f"{env.name('client-' + system.key)}.log"
    before = {name: process_counters(pid) for name, pid in cluster.watch.items()}
    client_before = children_counters()
    try:
        with open(log, "wb") as err:
            done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, timeout=timeout, env=client_env,
                                  cwd=str(PYDIR))
        # CPU time and context switches per job of every watched process over the client's whole
        # life (warm-up included), and of the client (replaced below by the client's own figure
        # for the measured phase, when it reports one).
        client_after = children_counters()
        jobs = m.count + m.warmup
        cpu = {"client": (client_after[0] - client_before[0]) / jobs * 1e6}
        switches = {"client": (client_after[1] - client_before[1]) / jobs}
        for name, pid in cluster.watch.items():
            after = process_counters(pid)
            if before.get(name) and after:
                cpu[name] = (after[0] - before[name][0]) / jobs * 1e6
                switches[name] = (after[1] - before[name][1]) / jobs
        record["cpu_us_per_job"] = {k: round(v, 2) for k, v in cpu.items()}
        record["switches_per_job"] = {k: round(v, 3) for k, v in switches.items()}
        lines = [line for line in done.stdout.decode(errors="replace").splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"client exited with {done.returncode} (see {log})")
        result = json.loads(lines[-1])
        record.update({k: v for k, v in result.items() if k not in ("kind", "count", "cpu_s", "switches")})
        if "cpu_s" in result:  # the client's own figure for the measured phase only
            record["cpu_us_per_job"]["client"] = round(result["cpu_s"] / m.count * 1e6, 2)
            record["switches_per_job"]["client"] = round(result["switches"] / m.count, 3)
        problems = []
        if result.get("ok") != m.count:
            problems.append(f"{result.get('ok')} of {m.count} jobs returned the right result")
        if result.get("wrong"):
            problems.append(f"{result['wrong']} wrong results")
        if result.get("failed"):
            problems.append(f"{result['failed']} failed: {result.get('errors', {})}")
        if problems:
            raise RuntimeError("; ".join(problems))
    except subprocess.TimeoutExpired:
        record.update(status="broken", error=f"client timed out after {timeout:.0f} s (see {log})")
    except Exception as error:  # noqa: BLE001 - any failure makes the run broken, and the suite goes on
        record.update(status="broken", error=str(error))
    for proc in cluster.procs:
        if proc.poll() is not None and record["status"] == "ok":
            record.update(status="broken", error=f"a {system.key} process (pid {proc.pid}) exited during the run")
    return record


def describe(record):
    if record["status"] != "ok":
        return f"BROKEN: {record.get('error')}"
    text = f"{record['jobs_per_s']:,.0f} jobs/s"
    if record["kind"] == "lat":
        text += f", p50 {record['p50_us']:.0f} us, p99 {record['p99_us']:.0f} us, p99.9 {record['p999_us']:.0f} us"
    return text


def run_all(env, plan_name, only):
    runs, unavailable = [], []
    for system in SYSTEMS:
        if only and system.key not in only:
            continue
        reason = system.unavailable(env)
        if reason:
            unavailable.append({"system": system.key, "label": system.label, "reason": reason})
            print(f"== {system.label}: {reason}", flush=True)
            continue
        plan = PLANS[plan_name][system.speed]
        for workers in WORKER_COUNTS:
            print(f"== {system.label}, {workers} worker{'s' if workers > 1 else ''}", flush=True)
            try:
                cluster = system.start(env, workers)
            except Exception as error:  # noqa: BLE001
                for m in measurements(plan, workers, env.args.scale, env.workloads):
                    runs.append({"system": system.key, "label": system.label, "workload": m.workload.key,
                                 "op": m.workload.op, "size": m.workload.size, "workers": workers, "kind": m.kind,
                                 "count": m.count, "status": "broken", "error": f"could not start: {error}"})
                print(f"   BROKEN: could not start: {error}", flush=True)
                env.processes.stop_all()
                continue
            try:
                for m in measurements(plan, workers, env.args.scale, env.workloads):
                    started = time.monotonic()
                    record = run_measurement(env, system, cluster, m)
                    record["wall_s"] = round(time.monotonic() - started, 2)
                    runs.append(record)
                    print(f"   {m.workload.key:13} {m.kind:4} n={m.count:<9,} {describe(record)}", flush=True)
            finally:
                for proc in reversed(cluster.procs):
                    env.processes.stop(proc)
    return runs, unavailable


def run_rounds(env, plan_name, only):
    """PAIR_ROUNDS rounds of the PAIR_SYSTEMS that can run, one after another in each round;
    returns their throughput records, each with its round number."""
    workload = next(w for w in WORKLOADS if w.key == LONG_RUN[0])
    plan = PLANS[plan_name]["fast"]
    keys = [k for k in PAIR_SYSTEMS if (not only or k in only) and not SYSTEM_BY_KEY[k].unavailable(env)]
    records = []
    if len(keys) < 2:
        return records
    for number in range(1, PAIR_ROUNDS + 1):
        print(f"== alternating round {number} of {PAIR_ROUNDS}: {', '.join(keys)}, 1 worker", flush=True)
        for key in keys:
            system = SYSTEM_BY_KEY[key]
            m = Measurement(workload, 1, "tput", max(1, int(plan["rounds"] * env.args.scale)), plan["warmup_tput"], 0)
            try:
                cluster = system.start(env, 1)
            except Exception as error:  # noqa: BLE001
                record = {"system": key, "label": system.label, "workload": workload.key, "workers": 1, "kind": "tput",
                          "count": m.count, "status": "broken", "error": f"could not start: {error}"}
            else:
                try:
                    record = run_measurement(env, system, cluster, m)
                finally:
                    for proc in reversed(cluster.procs):
                        env.processes.stop(proc)
            record["round"] = number
            records.append(record)
            print(f"   {system.label:29} n={m.count:<9,} {describe(record)}", flush=True)
    return records


def round_record(rounds, number, system):
    """`system`'s record in round `number`, if it ran there."""
    return next((r for r in rounds if r["round"] == number and r["system"] == system), None)


def round_ratio(rounds, number, system, baseline):
    """The ratio of `system`'s throughput to `baseline`'s in round `number`; None unless both ran."""
    a, b = (round_record(rounds, number, k) for k in (system, baseline))
    ok = lambda r: r["jobs_per_s"] if r and r["status"] == "ok" else None  # noqa: E731
    return ratio(ok(a), ok(b))


def round_ratios(rounds, system, baseline):
    """The ratio of `system`'s throughput to `baseline`'s in each round where both ran."""
    values = (round_ratio(rounds, n, system, baseline) for n in sorted({r["round"] for r in rounds}))
    return [v for v in values if v is not None]


# ---------------------------------------------------------------------------------------------
# Report


SYSTEM_BY_KEY = {s.key: s for s in SYSTEMS}


def find(runs, system, workload, workers, kind):
    for r in runs:
        if (r["system"], r["workload"], r["workers"], r["kind"]) == (system, workload, workers, kind) and r["status"] == "ok":
            return r
    return None


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_ratio(x, style="x"):
    if x is None:
        return "n/a"
    if style == "%":
        return f"{x * 100:.1f}%" if x < 10 else f"{x * 100:,.0f}%"
    return f"{x:,.2f}x" if x < 10 else f"{x:,.0f}x"


def fmt_num(x, digits=0):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def rss_growth(record, name):
    rss = record.get("rss_kib") or {}
    a = (rss.get("checkpoint") or {}).get(name)
    b = (rss.get("end") or {}).get(name)
    if not a or not b:
        return None, a, b
    return (b - a) / a, a, b


def md_table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def build_report(runs, unavailable, rounds=()):
    """Returns (tables as markdown text, targets list)."""
    ran = [s for s in SYSTEMS if any(r["system"] == s.key for r in runs)]
    parts = []

    # Throughput
    rows = []
    for w in WORKLOADS:
        for workers in WORKER_COUNTS:
            celery = find(runs, "celery", w.key, workers, "tput")
            for s in ran:
                r = find(runs, s.key, w.key, workers, "tput")
                base = find(runs, s.baseline, w.key, workers, "tput")
                broken = next((x for x in runs if (x["system"], x["workload"], x["workers"], x["kind"]) ==
                               (s.key, w.key, workers, "tput") and x["status"] != "ok"), None)
                value = "BROKEN" if broken and not r else fmt_num(r and r["jobs_per_s"])
                rows.append([w.label, workers, s.label, f"{r['count']:,}" if r else "", value,
                             fmt_ratio(ratio(r and r["jobs_per_s"], base and base["jobs_per_s"]), "%") +
                             f" of ({s.baseline[-1]})",
                             fmt_ratio(ratio(r and r["jobs_per_s"], celery and celery["jobs_per_s"]))])
    parts.append("### Throughput (jobs/s, pipelined, at most 10,000 in flight)\n\n" + md_table(
        ["workload", "workers", "system", "jobs", "jobs/s", "vs raw libzmq", "vs Celery"], rows))

    # Latency
    rows = []
    for w in WORKLOADS:
        celery = find(runs, "celery", w.key, 1, "lat")
        for s in ran:
            r = find(runs, s.key, w.key, 1, "lat")
            base = find(runs, s.baseline, w.key, 1, "lat")
            rows.append([w.label, s.label, fmt_num(r and r["p50_us"]), fmt_num(r and r["p99_us"]),
                         fmt_num(r and r["p999_us"]),
                         fmt_ratio(ratio(r and r["p50_us"], base and base["p50_us"])) + f" of ({s.baseline[-1]})",
                         fmt_ratio(ratio(r and r["p50_us"], celery and celery["p50_us"]))])
    parts.append("### Sequential latency (one job at a time, 1 worker, microseconds)\n\n" + md_table(
        ["workload", "system", "p50 us", "p99 us", "p99.9 us", "p50 vs raw libzmq", "p50 vs Celery"], rows))

    # Scaling 1 -> 2 workers
    rows = []
    for s in ran:
        cells = [s.label]
        for key in ("sha256-64KiB", "echo-16B"):
            one, two = find(runs, s.key, key, 1, "tput"), find(runs, s.key, key, 2, "tput")
            cells += [fmt_num(one and one["jobs_per_s"]), fmt_num(two and two["jobs_per_s"]),
                      fmt_ratio(ratio(two and two["jobs_per_s"], one and one["jobs_per_s"]))]
        rows.append(cells)
    parts.append("### Scaling from 1 to 2 worker processes (jobs/s)\n\n" + md_table(
        ["system", "sha256 1 worker", "sha256 2 workers", "sha256 2/1", "no-op 16 B 1 worker", "no-op 16 B 2 workers",
         "no-op 2/1"], rows))

    # RSS of the long run
    rows = []
    for s in ran:
        r = find(runs, s.key, LONG_RUN[0], LONG_RUN[1], "tput")
        if not r:
            continue
        rss = r.get("rss_kib") or {}
        names = sorted(set((rss.get("end") or {}).keys()), key=lambda n: (n != "client", n))
        for name in names:
            growth, a, b = rss_growth(r, name)
            mib = lambda k: "n/a" if not k else f"{k / 1024:,.1f}"  # noqa: E731
            rows.append([s.label, f"{r['count']:,}", name, mib(a), mib(b),
                         "n/a" if growth is None else f"{growth * 100:+.1f}%"])
    checkpoint_note = "RSS (MiB) after 10% of the long run's jobs and at its end"
    parts.append(f"### Memory: {checkpoint_note} (no-op 16 B, 1 worker)\n\n" + md_table(
        ["system", "jobs", "process", "RSS at 10%", "RSS at end", "growth"], rows))

    # CPU cost per job: steadier than wall-clock figures on a shared machine
    rows = []
    for s in ran:
        r = find(runs, s.key, LONG_RUN[0], LONG_RUN[1], "tput")
        base = find(runs, s.baseline, LONG_RUN[0], LONG_RUN[1], "tput")
        if not r or "cpu_us_per_job" not in r:
            continue
        cpu, sw = r["cpu_us_per_job"], r.get("switches_per_job", {})
        servers = [n for n in cpu if n != "client"]
        total = sum(cpu.values())
        base_total = sum(base["cpu_us_per_job"].values()) if base and "cpu_us_per_job" in base else None
        rows.append([s.label, f"{cpu['client']:.2f}", " + ".join(f"{n} {cpu[n]:.2f}" for n in sorted(servers)) or "-",
                     f"{total:.2f}", fmt_ratio(ratio(total, base_total)) + f" of ({s.baseline[-1]})",
                     f"{sum(sw.values()):.2f}"])
    parts.append("### CPU per job (microseconds of CPU, all threads; no-op 16 B, 1 worker, the long run)\n\n" + md_table(
        ["system", "client", "workers, sink, broker", "total", "total vs raw libzmq", "context switches per job"], rows))

    if rounds:
        rows = []
        keys = [k for k in PAIR_SYSTEMS if any(r["system"] == k for r in rounds)]
        pairs = [(a, b) for a, b in PAIR_LABELS if a in keys and b in keys]
        for number in sorted({r["round"] for r in rounds}):
            cells = [str(number)]
            for k in keys:
                r = round_record(rounds, number, k)
                cells.append("BROKEN" if r and r["status"] != "ok" else fmt_num(r and r.get("jobs_per_s")))
            cells += [fmt_ratio(round_ratio(rounds, number, a, b), "%") for a, b in pairs]
            rows.append(cells)
        median_row = ["median"] + [""] * len(keys)
        for a, b in pairs:
            values = round_ratios(rounds, a, b)
            median_row.append(fmt_ratio(statistics.median(values), "%") if values else "n/a")
        rows.append(median_row)
        count = next((r["count"] for r in rounds if "count" in r), 0)
        parts.append(f"### Alternating rounds (no-op 16 B, 1 worker, {count:,} jobs each, one system after another)\n\n" +
                     md_table(["round"] + [SYSTEM_BY_KEY[k].label for k in keys] + [PAIR_LABELS[p] for p in pairs], rows))

    if unavailable:
        parts.append("### Not measured\n\n" + "\n".join(f"- {u['label']}: {u['reason']}" for u in unavailable))

    targets = compute_targets(runs, rounds)
    rows = [[t["name"], t["goal"], t["measured"], t["result"]] for t in targets]
    parts.append("### Targets (TaskMesh direct unless named, no-op 16 B, 1 worker)\n\n" + md_table(
        ["target", "goal", "measured", "result"], rows))
    return "\n\n".join(parts), targets


def compute_targets(runs, rounds=()):
    """The targets of docs/BENCHMARKS.md. The two throughput ratios between systems are the
    median over the alternating rounds when they ran, else the long run's ratio."""
    key, workers = LONG_RUN
    tm = find(runs, "taskmesh-direct", key, workers, "tput")
    tm_lat = find(runs, "taskmesh-direct", key, workers, "lat")
    raw_b = find(runs, "raw-b", key, workers, "tput")
    raw_b_lat = find(runs, "raw-b", key, workers, "lat")
    pyzmq = find(runs, "pyzmq-asyncio", key, workers, "tput")
    celery = find(runs, "celery", key, workers, "tput")
    targets = []

    def add(name, goal, value, ok, shown):
        targets.append({"name": name, "goal": goal, "value": value,
                        "measured": shown if value is not None else "n/a",
                        "result": "n/a" if value is None else ("PASS" if ok(value) else "MISS")})

    def paired(system, baseline, long_run):
        """(value, shown): the rounds' median ratio, with each round's and the long run's."""
        values = round_ratios(rounds, system, baseline)
        if not values:
            return long_run, fmt_ratio(long_run, "%")
        median = statistics.median(values)
        each = ", ".join(fmt_ratio(v, "%") for v in values)
        return median, f"{fmt_ratio(median, '%')} (median of {len(values)} rounds: {each}; long run {fmt_ratio(long_run, '%')})"

    v, shown = paired("taskmesh-direct", "raw-b", ratio(tm and tm["jobs_per_s"], raw_b and raw_b["jobs_per_s"]))
    add("throughput vs raw libzmq shape (b)", ">= 50%", v, lambda x: x >= 0.5, shown)
    v = ratio(tm and tm["jobs_per_s"], pyzmq and pyzmq["jobs_per_s"])
    add("throughput vs pyzmq asyncio", ">= 10x", v, lambda x: x >= 10, fmt_ratio(v))
    v = ratio(tm and tm["jobs_per_s"], celery and celery["jobs_per_s"])
    add("throughput vs Celery + Redis", ">= 500x", v, lambda x: x >= 500, fmt_ratio(v))
    v = ratio(tm_lat and tm_lat["p50_us"], raw_b_lat and raw_b_lat["p50_us"])
    add("p50 latency vs raw libzmq shape (b)", "<= 1.5x", v, lambda x: x <= 1.5, fmt_ratio(v))
    reliable = find(runs, "taskmesh-reliable", key, workers, "tput")
    v, shown = paired("taskmesh-reliable", "taskmesh-direct", ratio(reliable and reliable["jobs_per_s"], tm and tm["jobs_per_s"]))
    add("reliable mode's throughput vs direct mode's", ">= 50%", v, lambda x: x >= 0.5, shown)
    growths = {}
    if tm:
        for name in sorted((tm.get("rss_kib") or {}).get("end", {})):
            g, _, _ = rss_growth(tm, name)
            if g is not None:
                growths[name] = g
    v = max(growths.values()) if growths else None
    shown = ", ".join(f"{n} {g * 100:+.1f}%" for n, g in growths.items())
    checkpoint = f"{tm['count'] // 10:,}" if tm else "10%"
    end = f"{tm['count']:,}" if tm else "end"
    add(f"RSS growth {checkpoint} -> {end} jobs (largest of client, sink, worker)", "<= 10%", v,
        lambda x: x <= 0.10, shown)
    return targets


def chart(runs, path, date):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib missing: no chart)")
        return False
    ran = [s for s in SYSTEMS if any(r["system"] == s.key and r["status"] == "ok" for r in runs)]
    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5))
    width = 0.8 / len(WORKLOADS)
    colors = ["#4C72B0", "#55A868", "#C44E52", "#8172B2"]
    for panel, (kind, field, title, ylabel) in enumerate([
            ("tput", "jobs_per_s", "Throughput, 1 worker (higher is better)", "jobs/s (log)"),
            ("lat", "p50_us", "Sequential latency p50, 1 worker (lower is better)", "microseconds (log)")]):
        ax = axes[panel]
        for i, w in enumerate(WORKLOADS):
            xs, ys = [], []
            for j, s in enumerate(ran):
                r = find(runs, s.key, w.key, 1, kind)
                if r:
                    xs.append(j + (i - (len(WORKLOADS) - 1) / 2) * width)
                    ys.append(r[field])
            ax.bar(xs, ys, width, label=w.label, color=colors[i % len(colors)])
        if kind == "lat":
            for j, s in enumerate(ran):
                r = find(runs, s.key, "echo-16B", 1, "lat")
                if r:
                    ax.plot([j - 0.4, j + 0.4], [r["p99_us"]] * 2, color="black", linewidth=1)
            ax.plot([], [], color="black", linewidth=1, label="p99, no-op 16 B")
        ax.set_yscale("log")
        ax.set_xticks(range(len(ran)))
        ax.set_xticklabels([s.short or s.label for s in ran], fontsize=9)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"TaskMesh benchmarks, {date} (one run, same machine; ratios matter, not absolutes)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------------
# Machine description


def first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except Exception:  # noqa: BLE001
        return "unknown"


def libzmq_version():
    try:
        lib = ctypes.CDLL("libzmq.so.5")
        major, minor, patch = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        lib.zmq_version(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(patch))
        return f"{major.value}.{minor.value}.{patch.value}"
    except OSError:
        return "unknown"


def machine(args):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    py = subprocess.run([args.python, "-c", "import zmq, celery, redis; print(zmq.__version__, zmq.zmq_version(), "
                                            "celery.__version__, redis.__version__)"],
                        capture_output=True, text=True).stdout.split()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "libzmq": libzmq_version(),
        "swift": first_line(["swift", "--version"]),
        "gcc": first_line(["gcc", "--version"]),
        "python": first_line([args.python, "--version"]),
        "pyzmq": f"{py[0]} (bundled libzmq {py[1]})" if len(py) == 4 else "unknown",
        "celery": py[2] if len(py) == 4 else "unknown",
        "redis_py": py[3] if len(py) == 4 else "unknown",
        "redis_server": first_line(["redis-server", "--version"]),
        "taskmesh_commit": first_line(["git", "-C", str(ROOT), "describe", "--always", "--dirty"]),
    }


def machine_text(m, load):
    return (f"{m['nproc']} cores, {m['cpu']}, {m['memory_gib']} GiB; {m['os']}, Linux {m['kernel']}; "
            f"libzmq {m['libzmq']} (C and TaskMesh), pyzmq {m['pyzmq']}; {m['swift']}; {m['python']}; "
            f"Celery {m['celery']}, {m['redis_server'].split(' sha=')[0]}; TaskMesh at {m['taskmesh_commit']}; "
            f"load average {load[0]:.2f} at the start, {load[1]:.2f} at the end")


def update_doc(doc, text):
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    content = doc.read_text()
    if begin not in content or end not in content:
        print(f"(no results markers in {doc}: not updated)")
        return
    head, rest = content.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(head + begin + "\n" + text.rstrip() + "\n" + end + tail)


# ---------------------------------------------------------------------------------------------


def publish(results, out, docs, update_docs):
    """Prints the tables and targets, writes results.json and the chart; in a full run of every
    system, also the results section of docs/BENCHMARKS.md and docs/benchmarks.png. Returns the
    number of broken runs."""
    runs, unavailable, rounds = results["runs"], results["unavailable"], results.get("rounds", [])
    tables, targets = build_report(runs, unavailable, rounds)
    results["targets"] = targets
    broken = [r for r in runs + rounds if r["status"] != "ok"]
    minutes = results["duration_s"] / 60
    print("\n" + tables + "\n")
    for t in targets:
        print(f"target: {t['name']}: goal {t['goal']}, measured {t['measured']}: {t['result']}")
    print(f"\n{len(runs) + len(rounds)} runs, {len(broken)} broken, {minutes:.1f} minutes ({results['mode']} mode)")
    broken_lines = [f"BROKEN: {r['system']} {r['workload']} {r['workers']} worker(s) {r['kind']}: {r.get('error')}"
                    for r in broken]
    for line in broken_lines:
        print(line)

    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    png = out / "benchmarks.png"
    have_chart = chart(runs, png, results["date"][:10])
    print(f"\nwrote {out / 'results.json'}" + (f" and {png}" if have_chart else ""))

    if update_docs:
        if have_chart:
            shutil.copyfile(png, docs / "benchmarks.png")
        scale = "" if results["scale"] == 1 else f" Job counts scaled by {results['scale']}."
        load = results["load_average"]
        prefetch = results.get('taskmesh_reliable_prefetch')
        prefetch_text = (f"also with `worker.prefetch: {prefetch}`" if prefetch is not None
                         else "with `worker.prefetch` unset (each sizes its credit from its jobs' mean time)")
        header = (f"Measured {results['date']} in full mode ({minutes:.1f} minutes).{scale} TaskMesh workers ran with "
                  f"`worker.concurrency: {results['taskmesh_worker_concurrency']}`, reliable-mode workers {prefetch_text}.\n\n"
                  f"Machine: {machine_text(results['machine'], (load['start'], load['end']))}.\n\n"
                  "Ratios are this system's figure divided by the reference's: raw libzmq shape (b) for TaskMesh "
                  "direct and reliable, shape (a) for the others; above 100% (or 1x) is faster for throughput, "
                  "above 1x is slower for latency.\n\n![benchmarks](benchmarks.png)")
        if broken:
            header += ("\n\n**Broken runs** (a job missing or wrong, or a process that crashed; details in "
                       "`Benchmarks/out/logs/`):\n\n" +
                       "\n".join(f"- {line[8:]}".replace(str(ROOT) + "/", "") for line in broken_lines))
        update_doc(docs / "BENCHMARKS.md", header + "\n\n" + tables)
        print(f"updated {docs / 'BENCHMARKS.md'} and {docs / 'benchmarks.png'}")
    return len(broken)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small N, every system, sanity checks only")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every job count (default 1)")
    p.add_argument("--only", default="", help="comma-separated system keys to run (default: all)")
    p.add_argument("--workloads", default="", help="comma-separated workload keys to run, e.g. echo-16B (default: all)")
    p.add_argument("--concurrency", type=int, default=4, help="worker.concurrency of TaskMesh workers (default 4)")
    p.add_argument("--reliable-prefetch", type=int, default=None,
                   help="worker.prefetch of TaskMesh reliable-mode workers: credit beyond concurrency (default: unset, "
                        "so each worker sizes it from its jobs' mean time, as the topology default does)")
    p.add_argument("--cbin", help="folder of raw_worker, raw_sink, raw_client")
    p.add_argument("--swiftbin", help="folder of tmbench and taskmesh (release)")
    p.add_argument("--python", help="the virtualenv's python")
    p.add_argument("--redis-url", default="", help="redis://127.0.0.1:PORT of a running redis-server")
    p.add_argument("--redis-pid", type=int, default=0)
    p.add_argument("--out", default=str(BENCH / "out"))
    p.add_argument("--docs", default=str(ROOT / "docs"), help="where BENCHMARKS.md and benchmarks.png go (full mode)")
    p.add_argument("--render", metavar="RESULTS_JSON",
                   help="run nothing: print the report of a results.json again (and update the docs if it is a "
                        "full run of every system)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    if args.render:
        results = json.loads(Path(args.render).read_text())
        complete = results["mode"] == "full" and not results.get("only")
        sys.exit(1 if publish(results, out, Path(args.docs), complete) else 0)
    if not (args.cbin and args.swiftbin and args.python):
        p.error("--cbin, --swiftbin and --python are required (scripts/bench.sh passes them)")

    mode = "quick" if args.quick else "full"
    only = [k for k in args.only.split(",") if k]
    shutil.rmtree(out / "logs", ignore_errors=True)  # the logs of this run only
    processes = Processes(out / "logs", out / "pids")
    env = Env(args, processes)

    def on_signal(signum, _frame):
        processes.stop_all()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    started = time.monotonic()
    load_start = os.getloadavg()[0]
    info = machine(args)
    print(f"TaskMesh benchmarks, {mode} mode, {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine: {machine_text(info, (load_start, load_start))}\n", flush=True)
    try:
        runs, unavailable = run_all(env, mode, only)
        rounds = run_rounds(env, mode, only)
    finally:
        processes.stop_all()
    results = {
        "mode": mode, "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 1), "scale": args.scale, "only": only, "window": WINDOW,
        "taskmesh_worker_concurrency": args.concurrency, "taskmesh_reliable_prefetch": args.reliable_prefetch,
        "machine": info,
        "load_average": {"start": load_start, "end": os.getloadavg()[0]},
        "plan": PLANS[mode], "systems": [{"key": s.key, "label": s.label, "baseline": s.baseline, "note": s.note}
                                         for s in SYSTEMS],
        "unavailable": unavailable, "runs": runs, "rounds": rounds,
    }
    sys.exit(1 if publish(results, out, Path(args.docs), mode == "full" and not only) else 0)


if __name__ == "__main__":
    main()
