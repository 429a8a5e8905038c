"""The Celery client of the benchmarks.

  python celery_bench.py --workers N [client options]

Waits until N workers answer a ping, then tput: submits `count` tasks in chunks of `window`, each
chunk collected with ResultSet.join_native; lat: one `task.delay(...).get()` at a time."""

import hashlib
import random
import string
import sys
import time

from celery.result import ResultSet

from celery_app import app, echo, sha256
from common import client_options, latency_fields, report, sample_rss, usage


def main():
    parser = client_options("Celery benchmark client")
    parser.add_argument("--workers", type=int, default=1)
    opts = parser.parse_args()

    deadline = time.monotonic() + 60
    while len(app.control.ping(timeout=0.5) or []) < opts.workers:
        if time.monotonic() > deadline:
            sys.exit(f"fewer than {opts.workers} Celery workers answered within 60 s")

    payload = "".join(random.choices(string.ascii_letters, k=opts.size))
    task = sha256 if opts.op == "sha256" else echo
    expected = hashlib.sha256(payload.encode("latin-1")).hexdigest() if opts.op == "sha256" else payload
    counts = {"ok": 0, "wrong": 0}
    rss = {}

    def check(value):
        counts["ok" if value == expected else "wrong"] += 1

    def pipelined(count, record):
        """Submits in chunks of `window` tasks and collects each chunk with join_native (Redis
        pub/sub), by far the fastest way Celery offers to wait for many results."""
        done = 0
        while done < count:
            chunk = [task.delay(payload) for _ in range(min(opts.window, count - done))]
            values = ResultSet(chunk).join_native(timeout=300)
            for result in chunk:
                result.forget()
            done += len(chunk)
            if record:
                for value in values:
                    check(value)
                if opts.checkpoint and done >= opts.checkpoint and "checkpoint" not in rss:
                    rss["checkpoint"] = sample_rss(opts.watch)

    if opts.kind == "tput":
        pipelined(opts.warmup, False)
        u0 = usage()
        start = time.perf_counter()
        pipelined(opts.count, True)
        seconds = time.perf_counter() - start
        u1 = usage()
        extra = {}
    else:
        for _ in range(opts.warmup):
            task.delay(payload).get(timeout=120)
        samples = []
        u0 = usage()
        start = time.perf_counter()
        for i in range(opts.count):
            t0 = time.perf_counter_ns()
            value = task.delay(payload).get(timeout=120)
            samples.append(time.perf_counter_ns() - t0)
            check(value)
            if i + 1 == opts.checkpoint:
                rss["checkpoint"] = sample_rss(opts.watch)
        seconds = time.perf_counter() - start
        u1 = usage()
        extra = latency_fields(samples)
    rss["end"] = sample_rss(opts.watch)
    report(opts, counts["ok"], counts["wrong"], seconds, rss, extra, u0, u1)


if __name__ == "__main__":
    main()
