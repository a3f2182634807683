"""The dashboard in a real headless Chromium against the in-memory harness (no servers)."""

from __future__ import annotations

from tests.browser import chromium_page
from tests.dashboard_page import TOKEN_KEY, open_dashboard, shown_overview, sign_in
from tests.factories import valid_user
from user_migration.domain.verify.request import VerifyRequest
from user_migration.entrypoints.harness import InMemoryHarness


async def test_the_dashboard_shows_the_harness_migration(aiohttp_client):
    users = [valid_user(user_id) for user_id in range(1, 41)]
    users += [valid_user(41, email=None), valid_user(42, username="x"), valid_user(43, email=None, username="y")]
    harness = InMemoryHarness.with_users(users)
    harness.target.refuse[7] = "refused by the test"
    client = await aiohttp_client(await harness.app())
    answer = await client.get(
        "/m2/migration/users", params={"batch_size": "100"}, headers={"Authorization": f"Bearer {harness.token}"}
    )
    assert answer.status == 200
    base_url = str(client.make_url("")).rstrip("/")

    async with chromium_page() as page:
        capture = await open_dashboard(page, base_url)
        await sign_in(page, harness.token)
        overview = await shown_overview(page, capture)
        assert overview["stats"]["total_dynamo_users"] == 39
        assert overview["verify"] is None
        verify_text = await page.evaluate("document.querySelector('#verify').textContent")
        assert verify_text.startswith("none yet")
        reasons = {reason["code"]: reason for reason in overview["failures"]["by_reason"]}
        assert {code: reason["example_user_ids"] for code, reason in reasons.items()} == {
            "missing_email": [41, 43],
            "invalid_username": [42, 43],
            "write_failed": [7],
        }
        table = await page.evaluate("document.querySelector('#reasons').innerText")
        assert "missing_email\t2\t41, 43" in table
        # The token stays in this tab's session only.
        kept = await page.evaluate(f"[sessionStorage.getItem('{TOKEN_KEY}'), localStorage.length]")
        assert kept == [harness.token, 0]
        assert all(url.startswith(base_url) for url in capture.urls), capture.urls

        # A second batch moves the numbers; the page follows within its 2 s.
        harness.source.put(valid_user(41))
        await client.get(
            "/m2/migration/users", params={"user_id": "41"}, headers={"Authorization": f"Bearer {harness.token}"}
        )
        await page.wait_for("document.querySelector('[data-field=\"stats.total_dynamo_users\"]').textContent === '40'")
        overview = await shown_overview(page, capture)
        assert overview["failures"]["failing_users"] == 3
        assert overview["verify_pass"] is None
        assert (await page.evaluate("document.querySelector('#verify-pass').textContent")).startswith("none yet")

        # A verify pass of its workers (here one, in-process) shows with its verdict.
        async with harness.library() as migration:
            worked = await migration.verify_as_worker(VerifyRequest(batch_size=10))
        assert worked.whole_pass is not None
        await page.wait_for("document.querySelector('[data-field=\"verify_pass.finished\"]')?.textContent === 'yes'")
        overview = await shown_overview(page, capture)
        assert overview["verify_pass"]["counts"]["checked"] == worked.whole_pass.checked
        assert overview["verify_pass"]["counts"]["missing"] == worked.whole_pass.missing == 1  # user 7, refused

        # A refused token brings the sign-in back, saying why.
        await page.evaluate(f"sessionStorage.setItem('{TOKEN_KEY}', 'wrong'); location.reload()")
        await page.wait_for("document.readyState === 'complete' && !document.querySelector('#login').hidden")
        error = await page.wait_for("document.querySelector('#login-error').textContent")
        assert "401 unauthorized" in error
        assert await page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None
