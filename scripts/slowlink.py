#!/usr/bin/env python3
"""A slow link for tests: a TCP relay that delays every byte it forwards, in each direction, and
may cap the rate. It stands in for `tc netem delay` where the kernel has no netem (packet loss is
iptables' job: NetworkLab.lose). Standard library only.

    python3 scripts/slowlink.py --listen 127.0.0.1:6000 --to 10.77.0.1:5802 --delay-ms 100 [--kbps 800]

Each chunk read from one side is written to the other `delay-ms` after it arrived, in order, so
a round trip through the relay takes 2 x delay-ms longer. Prints "ready" once it listens.
"""
import argparse
import asyncio
import time


def address(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def pump(reader, writer, delay, bytes_per_second):
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
            if bytes_per_second:
                next_free = max(next_free, time.monotonic()) + len(chunk) / bytes_per_second
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
    options = parser.parse_args()
    delay = options.delay_ms / 1000
    rate = options.kbps * 1000 / 8

    async def relay(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(*options.to)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, server_writer, delay, rate),
                             pump(server_reader, client_writer, delay, rate))

    server = await asyncio.start_server(relay, *options.listen)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
