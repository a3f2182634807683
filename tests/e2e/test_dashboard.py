"""The dashboard in a real headless Chromium, on the real stack (PostgreSQL, moto's DynamoDB),
while a segment worker migrates: the page shows exactly what the API answered it, and follows
the migration as it goes on."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from tests.browser import Page, chromium_page
from tests.dashboard_page import OverviewCapture, open_dashboard, shown_overview, sign_in
from tests.e2e.conftest import TOKEN
from tests.factories import valid_user
from tests.real_adapters import insert_users
from user_migration.container import resolve
from user_migration.entrypoints.http.keys import CONTAINER

USERS = 1006  # two segments of about 500
INVALID = (3, 5, 8, 13, 21, 34)  # no email: all in the first segment
VALID = USERS - len(INVALID)
# A budget, for the page to show (moto is slower still: about 75 users a second, some 13 s in all).
WRITE_UNITS = 150.0
# `DASHBOARD_SCREENSHOT=docs/dashboard.png` keeps the page as this test saw it mid-run.
SCREENSHOT = os.environ.get("DASHBOARD_SCREENSHOT")


def keep(path: str, png: bytes) -> None:
    Path(path).write_bytes(png)


def mid_run(overview: dict[str, Any]) -> bool:
    """Whether the overview shows a bit of everything: a rate, users pending, users failing."""
    return bool(
        overview["pace"]["users_per_second"]
        and overview["stats"]["pending_migration"]
        and overview["failures"]["failing_users"]
    )


async def next_overview(page: Page, capture: OverviewCapture, after: str | None) -> dict[str, Any]:
    """The first overview the page shows after the one of `after`, checked against the API's."""
    await page.wait_for(f"document.body.dataset.generatedAt !== {json.dumps(after)}", seconds=10)
    return await shown_overview(page, capture)


async def test_the_dashboard_follows_a_running_migration(start_live, postgres_dsn, tmp_path: Path):
    live = await start_live(max_write_units=WRITE_UNITS)
    insert_users(
        postgres_dsn,
        live.settings.source_table,
        [valid_user(i, email=None) if i in INVALID else valid_user(i) for i in range(1, USERS + 1)],
    )
    base_url = str(live.client.make_url("")).rstrip("/")
    worker = await resolve(live.client.app[CONTAINER].segment_worker())

    async with chromium_page() as page:
        capture = await open_dashboard(page, base_url)
        await sign_in(page, TOKEN)
        running = asyncio.create_task(worker.run(batch_size=50))
        seen: list[dict[str, Any]] = []
        generated_at = None
        screenshot = SCREENSHOT
        async with asyncio.timeout(60):
            while not running.done():
                overview = await next_overview(page, capture, generated_at)
                generated_at = overview["generated_at"]
                seen.append(overview)
                if screenshot and mid_run(overview):
                    keep(screenshot, await page.screenshot())
                    screenshot = None
        summary = await running
        assert summary.leases.unfinished_segments == 0

        # The numbers moved as the migration went on, and the page named the worker at work.
        migrated = [overview["stats"]["total_dynamo_users"] for overview in seen]
        assert migrated == sorted(migrated)
        assert len({count for count in migrated if 0 < count < VALID}) >= 2, migrated
        owners = {cell["owner"] for overview in seen for cell in overview["segments"]["cells"]}
        assert worker.worker in owners
        assert any(overview["pace"]["users_per_second"] for overview in seen)
        assert seen[-1]["sync"]["lag_seconds"] is not None  # the run marked where changes start

        # Once it is over, the page shows what the API says now.
        await page.send("Page.setDownloadBehavior", behavior="allow", downloadPath=str(tmp_path))
        status, verified = await live.get("/m2/migration/verify", batch_size=1000)
        assert status == 200, verified
        overview = await next_overview(page, capture, generated_at)
        async with asyncio.timeout(10):
            while overview["verify"] is None or overview["stats"]["total_dynamo_users"] < VALID:
                overview = await next_overview(page, capture, overview["generated_at"])
        stats = await live.fresh_stats()
        assert overview["stats"] | {"total_postgres_users_as_of": None} == stats | {"total_postgres_users_as_of": None}
        assert (stats["total_dynamo_users"], stats["failed_users"]) == (VALID, len(INVALID))
        assert overview["verify"]["counts"]["checked"] == verified["checked"]
        cells = overview["segments"]["cells"]
        assert overview["segments"]["counts"] == {"pending": 0, "leased": 0, "done": 1, "failing": 1}
        assert [cell["failing_users"] for cell in cells] == [len(INVALID), 0]
        assert overview["failures"]["by_reason"] == [
            {"code": "missing_email", "users": len(INVALID), "example_user_ids": list(INVALID[:5])}
        ]

        # The download holds every failing id, as the API gives them.
        await page.evaluate("document.querySelector('#download').click()")
        downloaded = tmp_path / "failing-users.jsonl"
        for _ in range(50):
            if downloaded.exists():
                break
            await asyncio.sleep(0.1)
        answer = await live.client.get("/m2/migration/failures", headers={"Authorization": f"Bearer {TOKEN}"})
        assert downloaded.read_text() == await answer.text()
        assert [json.loads(line)["user_id"] for line in downloaded.read_text().splitlines()] == list(INVALID)

        # Readable on a phone: nothing wider than the screen; every cell says its state in words.
        await page.resize(390, 844, mobile=True)
        await page.wait_for("window.innerWidth === 390")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        states = await page.evaluate("[...document.querySelectorAll('.cell-state')].map(e => e.textContent)")
        assert states == [cell["state"] for cell in cells]
        assert all(url.startswith(base_url) for url in capture.urls), capture.urls
