"""An HTTP proxy of the benchmarks (it counts or meters what passes) served on a loopback port,
in a thread with its own event loop, so that the processes under test reach moto through it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from aiohttp import ClientSession, web

from user_migration.entrypoints.demo.embedded import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextmanager
def serving(handle: Handler, name: str) -> Iterator[str]:
    """Serve `handle` (which finds an aiohttp `ClientSession` in `request.app["session"]`) for
    every request until exit; yields the URL."""
    port = free_port()
    started = threading.Event()
    stop: asyncio.Event | None = None
    loop_holder: list[asyncio.AbstractEventLoop] = []

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        loop_holder.append(asyncio.get_running_loop())
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", handle)
        async with ClientSession() as session:
            app["session"] = session
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            started.set()
            await stop.wait()
            await runner.cleanup()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    if not started.wait(20):
        raise RuntimeError(f"the {name} did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        assert stop is not None
        loop_holder[0].call_soon_threadsafe(stop.set)
        thread.join(10)
