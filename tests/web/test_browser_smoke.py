"""The browser fixtures themselves: Chromium runs a page's script, screenshots it, and reports its errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

PAGES = {
    "/": """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Smoke</title></head>
<body>
  <button id="toggle" type="button">Pause</button>
  <script>
    document.getElementById("toggle").addEventListener("click", (event) => {
      event.target.textContent = "Resume";
    });
  </script>
</body></html>
""",
    "/broken": """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Broken</title></head>
<body>
  <button id="break" type="button">Break</button>
  <script>
    document.getElementById("break").addEventListener("click", () => {
      console.error("refresh failed");
      throw new TypeError("monitors is undefined");
    });
  </script>
</body></html>
""",
}


@pytest.fixture
async def served() -> AsyncIterator[str]:
    """A local aiohttp server of the pages above; yields its base URL."""

    async def serve(request: web.Request) -> web.Response:
        if request.path not in PAGES:
            raise web.HTTPNotFound()
        return web.Response(text=PAGES[request.path], content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_click_runs_the_page_script(
    page: Page, served: str, screenshot: Callable[[Page, str], Awaitable[Path]]
) -> None:
    await page.goto(served + "/")
    button = page.get_by_role("button", name="Pause")
    await button.click()
    await expect(page.locator("#toggle")).to_have_text("Resume")

    path = await screenshot(page, "browser-smoke")
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes().startswith(b"\x89PNG")


async def test_script_errors_are_collected(page: Page, page_errors: list[str], served: str) -> None:
    await page.goto(served + "/broken")
    async with page.expect_event("pageerror"):
        await page.get_by_role("button", name="Break").click()

    assert any(e.startswith("console.error: refresh failed") for e in page_errors), page_errors
    assert "uncaught: TypeError: monitors is undefined" in page_errors
    page_errors.clear()  # expected here; any left would fail the test at teardown


async def test_the_phone_is_a_small_touch_screen(phone: Page, served: str) -> None:
    await phone.goto(served + "/")
    assert await phone.evaluate("window.innerWidth") == 390
    assert await phone.evaluate("matchMedia('(pointer: coarse)').matches")
