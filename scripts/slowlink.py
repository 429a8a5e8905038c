#!/usr/bin/env python3
"""A slow link for tests: a TCP relay that delays every byte it forwards, in each direction, and
may cap the rate. It stands in for `tc netem delay` where the kernel has no netem (packet loss is
iptables' job: NetworkLab.lose). Standard library only.

    python3 scripts/slowlink.py --listen 127.0.0.1:6000 --to 10.77.0.1:5802 --delay-ms 100 [--kbps 800]
        [--slow-ms 150] [--throttle-kbps 64]

Each chunk read from one side is written to the other `delay-ms` after it arrived, in order, so
a round trip through the relay takes 2 x delay-ms longer. With --slow-ms, SIGUSR1 switches the
delay to that many milliseconds; with --throttle-kbps, SIGHUP caps each direction at that rate;
SIGUSR2 puts back --delay-ms and --kbps. So a test can slow or throttle a link for a while
(chunks already waiting leave by the delay and rate in force when their turn comes). The relay
prints "delay N ms" and "rate N kbps" as each takes effect, and "ready" once it listens.
"""
import argparse
import asyncio
import signal
import time

# The one-way delay in force, in seconds, and the cap on each direction in bytes a second (0:
# none); signals change both.
delay = 0.0
rate = 0.0


def address(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def pump(reader, writer):
    queue = asyncio.Queue()

    async def read():
        while True:
            chunk = await reader.read(65536)
            await queue.put((time.monotonic(), chunk))
            if not chunk:
                return

    async def write():
        next_free = time.monotonic()
        while True:
            arrived, chunk = await queue.get()
            wait = arrived + delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                writer.close()
                return
            if rate:
                next_free = max(next_free, time.monotonic()) + len(chunk) / rate
                pause = next_free - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
            writer.write(chunk)
            await writer.drain()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, asyncio.IncompleteReadError):
        writer.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", type=address, required=True)
    parser.add_argument("--to", type=address, required=True)
    parser.add_argument("--delay-ms", type=float, default=0)
    parser.add_argument("--kbps", type=float, default=0, help="cap each direction at this many kilobits a second")
    parser.add_argument("--slow-ms", type=float, default=None, help="the delay SIGUSR1 switches to (SIGUSR2 switches back)")
    parser.add_argument("--throttle-kbps", type=float, default=None, help="the rate cap SIGHUP switches to (SIGUSR2 switches back)")
    options = parser.parse_args()
    # A parent that blocks or ignores these (a test runner's signal handling, inherited across
    # exec) must not leave the relay deaf.
    signals = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)

    def set_delay(ms):
        global delay
        delay = ms / 1000
        print(f"delay {ms:g} ms", flush=True)

    def set_rate(kbps):
        global rate
        rate = kbps * 1000 / 8
        print(f"rate {kbps:g} kbps", flush=True)

    def restore():
        set_delay(options.delay_ms)
        set_rate(options.kbps)

    global delay, rate
    delay = options.delay_ms / 1000
    rate = options.kbps * 1000 / 8
    loop = asyncio.get_running_loop()
    if options.slow_ms is not None:
        loop.add_signal_handler(signal.SIGUSR1, set_delay, options.slow_ms)
    if options.throttle_kbps is not None:
        loop.add_signal_handler(signal.SIGHUP, set_rate, options.throttle_kbps)
    if options.slow_ms is not None or options.throttle_kbps is not None:
        loop.add_signal_handler(signal.SIGUSR2, restore)

    async def relay(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(*options.to)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, server_writer),
                             pump(server_reader, client_writer))

    server = await asyncio.start_server(relay, *options.listen)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
