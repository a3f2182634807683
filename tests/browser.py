"""A real headless Chromium, driven over the Chrome DevTools Protocol with aiohttp's websocket
client (no driver to install). `make install` installs Chromium (Debian's `chromium` package);
without it the browser tests fail, saying so: they are never skipped."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

# Without these, Chromium on a closed network waits for services it cannot reach.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
)
START_SECONDS = 30.0
Listener = Callable[[dict[str, Any]], None]
# DevTools' errors of a command sent to a page that was meanwhile navigated or reloaded.
_NAVIGATED = ("Inspected target navigated or closed", "Execution context was destroyed", "Cannot find context")


class PageNavigated(AssertionError):
    """A command reached a page that went away (navigated, reloaded) before it answered."""


def chromium_path() -> str:
    """The Chromium binary; fails the test with what to do when there is none."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "Chromium is not installed: the dashboard's browser tests need it. `make install` installs it "
        "(Debian's packages chromium and chromium-driver, with apt-get).",
        pytrace=False,
    )


class Page:
    """One tab: commands (`send`), events (`on`), and helpers on top of them."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._reader = asyncio.create_task(self._read(), name="devtools reader")

    async def _read(self) -> None:
        async for message in self._socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if "id" in data:
                waiting = self._waiting.pop(data["id"], None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(data)
            else:
                for listener in self._listeners.get(data.get("method", ""), []):
                    listener(data.get("params", {}))
        for waiting in self._waiting.values():
            waiting.set_exception(ConnectionError("the browser closed the connection"))

    def on(self, event: str, listener: Listener) -> None:
        """Call `listener` with the parameters of every `event` (e.g. `Network.requestWillBeSent`)."""
        self._listeners.setdefault(event, []).append(listener)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run a DevTools command; its result (an error of the command raises)."""
        command_id = next(self._ids)
        answer = self._waiting[command_id] = asyncio.get_running_loop().create_future()
        await self._socket.send_json({"id": command_id, "method": method, "params": params})
        data = await asyncio.wait_for(answer, 30)
        if "error" in data:
            if any(words in str(data["error"].get("message")) for words in _NAVIGATED):
                raise PageNavigated(f"{method} failed: {data['error']}")
            raise AssertionError(f"{method} failed: {data['error']}")
        result: dict[str, Any] = data.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, seconds: float = 15.0, pause: float = 0.1) -> Any:
        """The value of `expression` once it is truthy; fails after `seconds`."""
        async with asyncio.timeout(seconds):
            while True:
                with contextlib.suppress(PageNavigated):  # asked while the page was loading again: ask the new one
                    value = await self.evaluate(expression)
                    if value:
                        return value
                await asyncio.sleep(pause)

    async def open(self, url: str) -> None:
        """Load `url` and wait until the document and its scripts are loaded."""
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete' && document.URL !== 'about:blank'")

    async def type_text(self, selector: str, text: str) -> None:
        """Focus the element and type `text` into it, as a keyboard would."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", text=text)

    async def press_enter(self) -> None:
        """Press and release Enter in the focused element."""
        for kind in ("keyDown", "keyUp"):
            await self.send(
                "Input.dispatchKeyEvent",
                type=kind,
                key="Enter",
                code="Enter",
                windowsVirtualKeyCode=13,
                **({"text": "\r"} if kind == "keyDown" else {}),
            )

    async def resize(self, width: int, height: int, mobile: bool = False) -> None:
        """Show the page at `width` CSS pixels (a phone's with `mobile`)."""
        await self.send(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile
        )

    async def screenshot(self) -> bytes:
        """The whole page as a PNG."""
        height = await self.evaluate("Math.ceil(document.documentElement.scrollHeight)")
        width = await self.evaluate("window.innerWidth")
        shot = await self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        )
        return base64.b64decode(shot["data"])

    async def close(self) -> None:
        await self._socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def _port_written(profile: Path) -> int | None:
    marker = profile / "DevToolsActivePort"
    written = marker.read_text().split() if marker.exists() else []
    return int(written[0]) if written else None


async def _debugging_port(profile: Path, process: asyncio.subprocess.Process) -> int:
    """The port Chromium chose (it writes it into the profile once it listens)."""
    async with asyncio.timeout(START_SECONDS):
        while True:
            port = _port_written(profile)
            if port is not None:
                return port
            if process.returncode is not None:
                raise AssertionError(f"Chromium exited at once (status {process.returncode})")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def chromium_page(width: int = 1280, height: int = 900) -> AsyncIterator[Page]:
    """A page of a new headless Chromium with an empty profile of its own, closed at exit."""
    binary = chromium_path()
    profile = Path(tempfile.mkdtemp(prefix="dashboard-chromium-"))
    process = await asyncio.create_subprocess_exec(
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        port = await _debugging_port(profile, process)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            tab = next(target for target in targets if target["type"] == "page")
            socket = await http.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0)
            page = Page(socket)
            try:
                await page.send("Page.enable")
                await page.resize(width, height)
                yield page
            finally:
                await page.close()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        shutil.rmtree(profile, ignore_errors=True)
