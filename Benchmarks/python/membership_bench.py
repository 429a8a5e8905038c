"""What the membership costs in a large, steady mesh: a real `taskmesh sink`, many stand-in
workers that each announce a long handler list, many stand-in clients that count the bytes the
sink sends them, and a few real `taskmesh submit` clients that sit idle holding the membership.

    python membership_bench.py --taskmesh .build/release/taskmesh [--workers 200 --handlers 20 --clients 50]

Prints one JSON object: the full list's size, bytes per second on the wire (to every client
together and to one), and the CPU the sink and an idle real client spend per second.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import zmq

TICKS = os.sysconf("SC_CLK_TCK")


def short(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def tmp_message(command: int, fields: bytes) -> bytes:
    """A TMP/2 message without a body: the preamble (signature, version 2, command, header length), then the fields."""
    return b"TM\x02" + bytes([command]) + (8 + len(fields)).to_bytes(4, "big") + fields


def announce(worker_id: bytes, endpoint: str, handlers: list[str]) -> bytes:
    names = sorted(h.encode() for h in handlers)
    fields = (4).to_bytes(2, "big") + short(worker_id) + short(endpoint.encode()) + short(b"")
    fields += len(names).to_bytes(2, "big") + b"".join(short(n) for n in names) + b"\x00"
    return tmp_message(0x03, fields)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--taskmesh", required=True)
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--handlers", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--real-clients", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()

    topology = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    topology.write('mode: direct\nsink:\n  results: { bind: "tcp://127.0.0.1:0" }\n  clients: { bind: "tcp://127.0.0.1:0" }\n'
                   "heartbeat: { interval: 1s, liveness: 3 }\n")
    topology.close()
    sink = subprocess.Popen([args.taskmesh, "sink", "-t", topology.name], stdout=subprocess.PIPE, text=True)
    processes = [sink]
    context = zmq.Context()
    try:
        ready = sink.stdout.readline().split()
        endpoints = dict(part.split("=", 1) for part in ready[1:])
        workers, pulls = [], []
        for n in range(args.workers):
            pull = context.socket(zmq.PULL)  # so real clients' connections succeed
            port = pull.bind_to_random_port("tcp://127.0.0.1")
            pulls.append(pull)
            push = context.socket(zmq.PUSH)
            push.connect(endpoints["results"])
            handlers = [f"team{n % 10}-handler-{k:02d}" for k in range(args.handlers)]
            workers.append((push, announce(f"worker-{n:04d}".encode(), f"tcp://127.0.0.1:{port}", handlers)))
        clients = []
        for n in range(args.clients):
            dealer = context.socket(zmq.DEALER)
            dealer.setsockopt(zmq.ROUTING_ID, f"client-{n:04d}".encode())
            dealer.setsockopt(zmq.RCVHWM, 0)
            dealer.connect(endpoints["clients"])
            clients.append(dealer)
        real = [subprocess.Popen([args.taskmesh, "submit", "echo", "--workers", str(10 * args.workers), "--wait", f"{int(args.seconds) + 30}s",
                                  "-t", topology.name, "--sink", endpoints["clients"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for _ in range(args.real_clients)]
        processes += real

        def beat():
            for push, message in workers:
                push.send(message)
            for dealer in clients:
                dealer.send(tmp_message(0x05, b""))

        def drain(tally):
            for dealer in clients:
                while True:
                    try:
                        frames = dealer.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    size = sum(len(f) for f in frames)
                    tally["bytes"] += size
                    full = len(frames[0]) < 13 or not frames[0][12] & 1
                    tally["full" if full else "unchanged"] += 1
                    if full:
                        tally["full_size"] = max(tally["full_size"], size)

        warm = {"bytes": 0, "full": 0, "unchanged": 0, "full_size": 0}
        for _ in range(4):  # every worker announced, every client holds the list
            beat()
            time.sleep(1)
            drain(warm)
        tally = {"bytes": 0, "full": 0, "unchanged": 0, "full_size": 0}
        sink_cpu, real_cpu = cpu_seconds(sink.pid), [cpu_seconds(p.pid) for p in real]
        start = time.monotonic()
        while time.monotonic() - start < args.seconds:
            beat()
            time.sleep(1)
            drain(tally)
        elapsed = time.monotonic() - start
        sink_cpu = cpu_seconds(sink.pid) - sink_cpu
        real_cpu = [cpu_seconds(p.pid) - before for p, before in zip(real, real_cpu)]
        full_size = max(tally["full_size"], warm["full_size"])
        print(json.dumps({
            "workers": args.workers, "handlers_per_worker": args.handlers, "clients": args.clients,
            "seconds": round(elapsed, 1),
            "full_list_bytes": full_size,
            "bytes_per_second_all_clients": round(tally["bytes"] / elapsed),
            "bytes_per_second_per_client": round(tally["bytes"] / elapsed / args.clients),
            "full_lists": tally["full"], "unchanged_lists": tally["unchanged"],
            "if_every_beat_were_full_bytes_per_second": round(full_size * args.clients),
            "sink_cpu_percent": round(100 * sink_cpu / elapsed, 2),
            "idle_real_client_cpu_percent": [round(100 * c / elapsed, 2) for c in real_cpu],
        }))
        return 0
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        context.destroy(linger=0)
        os.unlink(topology.name)


if __name__ == "__main__":
    sys.exit(main())
