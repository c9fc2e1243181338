#!/usr/bin/env python3
"""A TCP relay that adds a fixed delay to every byte in each direction, standing in
for `tc netem delay`, which this machine's kernel lacks (no CONFIG_NET_SCH_NETEM):
bench/scale.sh says so in its report.

    latency-proxy.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT ONE_WAY_MS

Each chunk read from one side is written to the other ONE_WAY_MS later, in order,
without holding back the reads behind it: a round trip costs 2 × ONE_WAY_MS, as on
a link with that delay, and throughput is not capped by the delay. Stops on SIGTERM.
"""
import asyncio
import signal
import sys
import time


async def pipe(reader, writer, delay):
    queue = asyncio.Queue()

    async def read():
        try:
            while chunk := await reader.read(65536):
                await queue.put((time.monotonic() + delay, chunk))
        finally:
            await queue.put((time.monotonic() + delay, None))

    async def write():
        while True:
            due, chunk = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if chunk is None:
                break
            writer.write(chunk)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, OSError):
        pass


async def main():
    host, port, target_host, target_port, delay_ms = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    delay = delay_ms / 1000
    # asyncio keeps only weak references to the handlers' tasks: without these, a relay
    # waiting on its queues is collected mid-connection ("Task was destroyed but it is pending").
    running = set()

    async def serve(client_reader, client_writer):
        task = asyncio.current_task()
        running.add(task)
        try:
            try:
                server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
            except OSError:
                client_writer.close()
                return
            await asyncio.gather(pipe(client_reader, server_writer, delay), pipe(server_reader, client_writer, delay))
            for w in (client_writer, server_writer):
                w.close()
        finally:
            running.discard(task)

    server = await asyncio.start_server(serve, host, port, backlog=512)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
