"""The dashboard as a person sees it, in a real browser: signing in, and what it shows against
what the API answered it (each overview response read off the wire, as the browser received it)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

from tests.browser import Page

DASHBOARD = "/m2/migration/dashboard"
OVERVIEW = "/m2/migration/overview"
TOKEN_KEY = "user-migration-token"

# Every element showing a value: its path in the overview, its text, and how it reads null,
# booleans and fractions (its data- attributes).
_SHOWN = """(() => ({
  generatedAt: document.body.dataset.generatedAt || null,
  fields: [...document.querySelectorAll('#board [data-field]')].map(element => ({
    path: element.dataset.field, text: element.textContent, options: {...element.dataset},
  })),
}))()"""


class OverviewCapture:
    """The overview bodies the page received (by `generated_at`) and every URL it asked for."""

    def __init__(self, page: Page) -> None:
        self._page = page
        self._pending: dict[str, str] = {}
        self.bodies: dict[str, dict[str, Any]] = {}
        self.urls: list[str] = []
        self._reads: set[asyncio.Task[None]] = set()
        page.on("Network.requestWillBeSent", self._request)
        page.on("Network.loadingFinished", self._finished)

    def _request(self, params: dict[str, Any]) -> None:
        url = params["request"]["url"]
        self.urls.append(url)
        if url.split("?")[0].endswith(OVERVIEW):
            self._pending[params["requestId"]] = url

    def _finished(self, params: dict[str, Any]) -> None:
        if self._pending.pop(params["requestId"], None) is None:
            return
        read = asyncio.create_task(self._read(params["requestId"]))
        self._reads.add(read)
        read.add_done_callback(self._reads.discard)

    async def _read(self, request_id: str) -> None:
        body = await self._page.send("Network.getResponseBody", requestId=request_id)
        # Decimal keeps every number as the service wrote it (ids up to 2**63 - 1 included).
        overview = json.loads(body["body"], parse_float=Decimal)
        if isinstance(overview, dict) and "generated_at" in overview:
            self.bodies[overview["generated_at"]] = overview

    async def body_of(self, generated_at: str, seconds: float = 5.0) -> dict[str, Any]:
        """The body the page got for `generated_at` (its read may still be under way)."""
        async with asyncio.timeout(seconds):
            while True:
                if generated_at in self.bodies:
                    return self.bodies[generated_at]
                await asyncio.sleep(0.02)


async def open_dashboard(page: Page, base_url: str) -> OverviewCapture:
    """Open the page, listening to its requests."""
    await page.send("Network.enable")
    capture = OverviewCapture(page)
    await page.open(f"{base_url}{DASHBOARD}")
    return capture


async def sign_in(page: Page, token: str) -> None:
    """Type the token into the field labelled "Token" and press Enter; wait for the first data."""
    label = await page.evaluate("document.querySelector('label[for=token]').textContent")
    assert label == "Token"
    await page.type_text("#token", token)
    await page.press_enter()
    await page.wait_for("!document.querySelector('#board').hidden && document.body.dataset.generatedAt")


def value_at(overview: Any, path: str) -> Any:
    """The value at a dotted path (list indexes as numbers)."""
    value = overview
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def _number(value: int | Decimal, fraction_digits: int) -> str:
    """As the page's Intl.NumberFormat('en-US') writes it: thousands separators, at most
    `fraction_digits` decimals, no trailing zeros."""
    if isinstance(value, int):
        return f"{value:,}"
    return f"{round(value, fraction_digits):,.{fraction_digits}f}".rstrip("0").rstrip(".")


def expected_text(value: Any, options: dict[str, str]) -> str:
    """What the page must show for `value`, given the element's data- attributes."""
    if value is None:
        return options.get("null", "—")
    if isinstance(value, bool):
        return options.get("true", "yes") if value else options.get("false", "no")
    if isinstance(value, int | Decimal):
        if "percent" in options:
            return f"{_number(Decimal(value) * 100, 1)} %"
        return _number(value, 3)
    return str(value)


def leaf_paths(value: Any, prefix: str = "") -> set[str]:
    """The dotted paths of every value (not list or object) in `value`."""
    if isinstance(value, dict):
        return {path for key, item in value.items() for path in leaf_paths(item, f"{prefix}{key}.")}
    if isinstance(value, list):
        return {path for index, item in enumerate(value) for path in leaf_paths(item, f"{prefix}{index}.")}
    return {prefix.rstrip(".")}


async def shown_overview(page: Page, capture: OverviewCapture) -> dict[str, Any]:
    """Check that the page shows exactly the overview the API sent it last, every value of it;
    that overview."""
    shown = await page.evaluate(_SHOWN)
    overview = await capture.body_of(shown["generatedAt"])
    fields = shown["fields"]
    for field in fields:
        wanted = expected_text(value_at(overview, field["path"]), field["options"])
        assert field["text"] == wanted, f"{field['path']}: the page shows {field['text']!r}, the API said {wanted!r}"
    assert {field["path"] for field in fields} == leaf_paths(overview), "the page leaves values of the API out"
    return overview
