"""pyzmq worker and clients, shape (a): client PUSH -> worker PULL, worker PUSH -> client PULL.

Same wire format as the raw C programs (Benchmarks/c/common.h): job = [header][payload], header =
8-byte job number (little endian), 1-byte op ('e' echo, 's' sha256), 16-byte client id; the
result carries the header back with the payload (echo) or its hex SHA-256 digest.

  python zmq_bench.py worker                       binds both sockets, prints "ready jobs=.. results=.."
  python zmq_bench.py asyncio --jobs EP --results EP [client options]
      zmq.asyncio, one asyncio Future per job, resolved by a receiver task: the shape of TaskMesh's
      API (enqueue returns a future, awaited later)
  python zmq_bench.py blocking --jobs EP --results EP [client options]
      plain blocking pyzmq, one thread sending and receiving without blocking (as raw_client.c)
"""

import asyncio
import hashlib
import os
import sys
import time

import zmq
import zmq.asyncio

from common import client_options, latency_fields, random_payload, report, sample_rss, usage

HWM = 10000


def configure(sock):
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.setsockopt(zmq.LINGER, 0)
    return sock


def worker():
    ctx = zmq.Context()
    jobs = configure(ctx.socket(zmq.PULL))
    results = configure(ctx.socket(zmq.PUSH))
    jobs.bind("tcp://127.0.0.1:*")
    results.bind("tcp://127.0.0.1:*")
    print(f"ready jobs={jobs.last_endpoint.decode()} results={results.last_endpoint.decode()}", flush=True)
    sha = ord("s")
    while True:
        header, body = jobs.recv_multipart()
        if header[8] == sha:
            body = hashlib.sha256(body).hexdigest().encode()
        results.send_multipart([header, body])


class Job:
    def __init__(self, opts):
        self.opts = opts
        self.payload = random_payload(opts.size)
        self.expected = hashlib.sha256(self.payload).hexdigest().encode() if opts.op == "sha256" else self.payload
        self.tail = (b"s" if opts.op == "sha256" else b"e") + os.urandom(16)

    def header(self, seq):
        return seq.to_bytes(8, "little") + self.tail


async def run_asyncio(opts):
    job = Job(opts)
    ctx = zmq.asyncio.Context()
    push = configure(ctx.socket(zmq.PUSH))
    pull = configure(ctx.socket(zmq.PULL))
    for ep in opts.results.split(","):
        pull.connect(ep)
    for ep in opts.jobs.split(","):
        push.connect(ep)
    loop = asyncio.get_running_loop()
    pending = {}
    sequence = 0

    async def receiver():
        while True:
            header, body = await pull.recv_multipart()
            future = pending.pop(int.from_bytes(header[:8], "little"), None)
            if future is not None and not future.done():
                future.set_result(body)

    async def enqueue():
        """Sends a job; returns the future of its result."""
        nonlocal sequence
        sequence += 1
        future = loop.create_future()
        pending[sequence] = future
        await push.send_multipart([job.header(sequence), job.payload])
        return future

    receiving = asyncio.create_task(receiver())
    ok = wrong = 0
    rss = {}

    async def pipelined(count, record):
        nonlocal ok, wrong
        window = max(1, min(opts.window, count))
        ring = [None] * window
        done = 0

        async def settle(future):
            nonlocal ok, wrong, done
            body = await asyncio.wait_for(future, 60)
            done += 1
            if record:
                if body == job.expected:
                    ok += 1
                else:
                    wrong += 1
                if done == opts.checkpoint:
                    rss["checkpoint"] = sample_rss(opts.watch)

        for i in range(count):
            slot = i % window
            if ring[slot] is not None:
                await settle(ring[slot])
            ring[slot] = await enqueue()
        for i in range(window):
            future = ring[(count + i) % window]
            if future is not None:
                await settle(future)

    if opts.kind == "tput":
        await pipelined(opts.warmup, False)
        u0 = usage()
        start = time.perf_counter()
        await pipelined(opts.count, True)
        seconds = time.perf_counter() - start
        u1 = usage()
        extra = {}
    else:
        for _ in range(opts.warmup):
            await asyncio.wait_for(await enqueue(), 60)
        samples = []
        u0 = usage()
        start = time.perf_counter()
        for i in range(opts.count):
            t0 = time.perf_counter_ns()
            body = await asyncio.wait_for(await enqueue(), 60)
            samples.append(time.perf_counter_ns() - t0)
            if body == job.expected:
                ok += 1
            else:
                wrong += 1
            if i + 1 == opts.checkpoint:
                rss["checkpoint"] = sample_rss(opts.watch)
        seconds = time.perf_counter() - start
        u1 = usage()
        extra = latency_fields(samples)
    rss["end"] = sample_rss(opts.watch)
    receiving.cancel()
    report(opts, ok, wrong, seconds, rss, extra, u0, u1)
    ctx.destroy(linger=0)


def run_blocking(opts):
    job = Job(opts)
    ctx = zmq.Context()
    push = configure(ctx.socket(zmq.PUSH))
    pull = configure(ctx.socket(zmq.PULL))
    pull.setsockopt(zmq.RCVTIMEO, 60000)
    for ep in opts.results.split(","):
        pull.connect(ep)
    for ep in opts.jobs.split(","):
        push.connect(ep)
    counts = {"ok": 0, "wrong": 0}
    rss = {}

    def check(body):
        counts["ok" if body == job.expected else "wrong"] += 1

    def pipelined(count, record):
        sent = done = 0
        poller = zmq.Poller()
        poller.register(pull, zmq.POLLIN)
        poller.register(push, zmq.POLLOUT)
        while done < count:
            progress = False
            try:
                while sent < count and sent - done < opts.window:
                    push.send_multipart([job.header(sent), job.payload], flags=zmq.NOBLOCK)
                    sent += 1
                    progress = True
            except zmq.Again:
                pass
            try:
                while done < sent:
                    _, body = pull.recv_multipart(flags=zmq.NOBLOCK)
                    done += 1
                    progress = True
                    if record:
                        check(body)
                        if done == opts.checkpoint:
                            rss["checkpoint"] = sample_rss(opts.watch)
            except zmq.Again:
                pass
            if not progress and not poller.poll(60000):
                sys.exit("no progress for 60 s")

    if opts.kind == "tput":
        pipelined(opts.warmup, False)
        u0 = usage()
        start = time.perf_counter()
        pipelined(opts.count, True)
        seconds = time.perf_counter() - start
        u1 = usage()
        extra = {}
    else:
        for i in range(opts.warmup):
            push.send_multipart([job.header(i), job.payload])
            pull.recv_multipart()
        samples = []
        u0 = usage()
        start = time.perf_counter()
        for i in range(opts.count):
            t0 = time.perf_counter_ns()
            push.send_multipart([job.header(i), job.payload])
            _, body = pull.recv_multipart()
            samples.append(time.perf_counter_ns() - t0)
            check(body)
            if i + 1 == opts.checkpoint:
                rss["checkpoint"] = sample_rss(opts.watch)
        seconds = time.perf_counter() - start
        u1 = usage()
        extra = latency_fields(samples)
    rss["end"] = sample_rss(opts.watch)
    report(opts, counts["ok"], counts["wrong"], seconds, rss, extra, u0, u1)
    ctx.destroy(linger=0)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker()
        return
    parser = client_options("pyzmq benchmark client")
    parser.add_argument("style", choices=["asyncio", "blocking"])
    parser.add_argument("--jobs", required=True)
    parser.add_argument("--results", required=True)
    opts = parser.parse_args()
    if opts.style == "asyncio":
        asyncio.run(run_asyncio(opts))
    else:
        run_blocking(opts)


if __name__ == "__main__":
    main()
