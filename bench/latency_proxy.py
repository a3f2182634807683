"""A TCP proxy that adds a fixed delay to every request, like a network between client and server.

    python -m bench.latency_proxy LISTEN_PORT TARGET_PORT [DELAY_MS]

Each chunk of bytes from the client is forwarded DELAY_MS after it arrived (chunks queued behind
it go along with it, so an HTTP request that arrives in two pieces is delayed once); the answers
come back at once. Delays of requests on different connections overlap, as they do on a network.

The connection to the server is opened only when the first bytes are due: a server that handles
one connection at a time (moto, as the project runs it) is never kept waiting by the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

HOST = "127.0.0.1"


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


class LatencyProxy:
    """Forwards LISTEN_PORT to TARGET_PORT on loopback, each client->server chunk delayed."""

    def __init__(self, target_port: int, delay_seconds: float) -> None:
        self._target_port = target_port
        self._delay = delay_seconds
        self._tasks: set[asyncio.Task[Any]] = set()  # the loop keeps only weak references

    def _keep(self, task: asyncio.Task[Any]) -> asyncio.Task[Any]:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        this = asyncio.current_task()
        if this is not None:
            self._keep(this)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        forwarder = self._keep(asyncio.create_task(self._forward(queue, client_writer)))
        try:
            while data := await client_reader.read(65536):
                queue.put_nowait((loop.time() + self._delay, data))
        except (ConnectionError, OSError):
            pass
        queue.put_nowait(None)
        await forwarder

    async def _forward(self, queue: asyncio.Queue[tuple[float, bytes] | None], client: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        upstream: asyncio.StreamWriter | None = None
        answers: asyncio.Task[None] | None = None
        try:
            while (entry := await queue.get()) is not None:
                due, data = entry
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                ended = False
                while not queue.empty():  # what arrived meanwhile goes along
                    later = queue.get_nowait()
                    if later is None:
                        ended = True
                        break
                    data += later[1]
                if upstream is None:
                    upstream_reader, upstream = await asyncio.open_connection(HOST, self._target_port)
                    answers = self._keep(asyncio.create_task(_copy(upstream_reader, client)))
                upstream.write(data)
                await upstream.drain()
                if ended:
                    break
            if upstream is not None and upstream.can_write_eof():
                upstream.write_eof()
            if answers is not None:
                await answers
        except (ConnectionError, OSError):
            pass
        finally:
            if upstream is not None:
                upstream.close()
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                client.close()


async def serve(listen_port: int, target_port: int, delay_ms: float) -> None:
    """Serve until killed."""
    proxy = LatencyProxy(target_port, delay_ms / 1000)
    server = await asyncio.start_server(proxy.handle, HOST, listen_port, backlog=512)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> None:
    """Entry point: LISTEN_PORT TARGET_PORT [DELAY_MS]."""
    listen_port, target_port = int(argv[0]), int(argv[1])
    delay_ms = float(argv[2]) if len(argv) > 2 else 5.0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(listen_port, target_port, delay_ms))


if __name__ == "__main__":
    main(sys.argv[1:])
