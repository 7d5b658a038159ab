"""Real Chromium for the web pages: Debian's browser, driven by Playwright.

``browser`` is one Chromium for the session (the system executable, never a
downloaded one: ``scripts/chromium`` installs it). ``page`` and ``phone`` are
fresh pages, each in a context of its own (no shared cookies), a desktop and
a phone screen. Any uncaught script error or ``console.error`` on them fails
the test; a test that expects some reads ``page_errors`` and clears it.
``await screenshot(page, "name")`` saves the whole page under
``.data/screenshots/`` for a person to look at. Assertions use
``from playwright.async_api import expect`` (10 s, like every action here).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    async_playwright,
    expect,
)

from tests.channels.conftest import installed_plugins  # noqa: F401  (pip-installs the example plugins)
from tests.support import ROOT

CHROMIUM = Path(os.environ.get("UPTIMED_CHROMIUM", "/usr/bin/chromium"))
# Headless as root on a machine without a GPU. The background-networking
# flags keep Chromium from calling Google's services, which are not reachable
# here and would slow every start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
TIMEOUT_MS = 10_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = ROOT / ".data" / "screenshots"

expect.set_options(timeout=TIMEOUT_MS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the browser, so ``-m "not browser"`` leaves them out."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Fail a test whose pages had script errors it did not clear from ``page_errors``."""
    result = yield
    errors = getattr(item, "funcargs", {}).get("page_errors")
    if errors:
        reported = list(errors)
        errors.clear()  # reported here, not again at teardown
        pytest.fail("script errors on the page:\n" + "\n".join(reported), pytrace=False)
    return result


def watch_errors(page: Page, errors: list[str]) -> None:
    """Append the page's uncaught errors and ``console.error`` messages to ``errors``."""

    def on_console(message: ConsoleMessage) -> None:
        where = message.location
        # A page that names no icon makes Chromium ask for /favicon.ico on its
        # own; that 404 is the browser's guess, not the page's mistake.
        if message.type == "error" and urlsplit(where["url"]).path != "/favicon.ico":
            errors.append(f"console.error: {message.text} ({where['url']}:{where['lineNumber']})")

    def on_page_error(error: Error) -> None:
        errors.append(f"uncaught: {error.name}: {error.message}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the whole session."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: run scripts/chromium (or set UPTIMED_CHROMIUM)", pytrace=False)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def page_errors() -> list[str]:
    """The script errors seen on this test's pages; clear it to allow the ones a test expects."""
    return []


@asynccontextmanager
async def _open_page(browser: Browser, errors: list[str], **context: Any) -> AsyncIterator[Page]:
    isolated = await browser.new_context(**context)
    isolated.set_default_timeout(TIMEOUT_MS)
    try:
        page = await isolated.new_page()
        watch_errors(page, errors)
        yield page
    finally:
        await isolated.close()
    # Errors that arrived after the test's last step.
    if errors:
        pytest.fail("script errors on the page:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture
async def page(browser: Browser, page_errors: list[str]) -> AsyncIterator[Page]:
    """A desktop page (1280x800) in a fresh context; fails the test on script errors."""
    async with _open_page(browser, page_errors, viewport=DESKTOP) as opened:
        yield opened


@pytest.fixture
async def phone(browser: Browser, page_errors: list[str]) -> AsyncIterator[Page]:
    """A phone-sized touch page (390x844) in a fresh context; fails the test on script errors."""
    async with _open_page(browser, page_errors, viewport=PHONE, is_mobile=True, has_touch=True) as opened:
        yield opened


async def save_screenshot(page: Page, name: str) -> Path:
    """Save the whole page as ``.data/screenshots/<name>.png`` and return its path."""
    path = SCREENSHOTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=path, full_page=True)
    return path


@pytest.fixture
def screenshot() -> Callable[[Page, str], Awaitable[Path]]:
    """``await screenshot(page, name)``: a full-page PNG under ``.data/screenshots/``."""
    return save_screenshot
