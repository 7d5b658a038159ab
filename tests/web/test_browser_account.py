"""The account page in real Chromium against `uptimed run`: password, API tokens, two-factor sign-in; /docs.

Each test signs in through the form as alice (see tests/web/test_browser.py)
and saves screenshots of what it visits under .data/screenshots/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

import httpx
import pyotp
from playwright.async_api import Page, expect

from tests.web.fixtures import PASSWORD
from tests.web.test_browser import Shoot, Uptimed, assert_labelled, launch, sign_in  # noqa: F401 (launch: a fixture)

NEW_PASSWORD = "a much better passphrase"

Launch = Callable[[str], Awaitable[Uptimed]]


def expected_refusals(page_errors: list[str], *statuses: int) -> None:
    """Clear the browser's own note of each refused form (a 4xx page is the answer the test wants), nothing else."""
    notes = [f"Failed to load resource: the server responded with a status of {status} " for status in statuses]
    left = [e for e in page_errors if not any(note in e for note in notes)]
    assert len(page_errors) - len(left) == len(statuses), page_errors
    page_errors[:] = left


async def open_account(page: Page) -> None:
    await page.get_by_role("link", name="alice").click()
    await expect(page.get_by_role("heading", name="Account", exact=True)).to_be_visible()
    await assert_labelled(page)


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def password_step(page: Page, uptimed: Uptimed, password: str) -> None:
    await page.goto(uptimed.at("/login"))
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_change_the_password(page: Page, page_errors: list[str], screenshot: Shoot, launch: Launch) -> None:
    uptimed = await launch("")
    await sign_in(page, uptimed)
    await open_account(page)
    await screenshot(page, "account")
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_label("New password", exact=True).fill("password")
    await page.get_by_label("New password again").fill("password")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.locator("#new-error")).to_contain_text("one of the first ones anybody tries")
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("New password again").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_role("status")).to_contain_text("Password changed.")
    await sign_out(page)
    await password_step(page, uptimed, PASSWORD)
    await expect(page.get_by_role("alert")).to_contain_text("Wrong username or password.")
    await password_step(page, uptimed, NEW_PASSWORD)
    await expect(page.get_by_role("heading", name="Monitors", exact=True)).to_be_visible()
    expected_refusals(page_errors, 422, 401)


async def test_create_and_revoke_an_api_token(page: Page, screenshot: Shoot, launch: Launch) -> None:
    uptimed = await launch("")
    await sign_in(page, uptimed)
    await open_account(page)
    await page.get_by_label("What it is for").fill("deploy script")
    await page.get_by_label("Expires").select_option(label="In 30 days")
    await page.get_by_role("button", name="Create token").click()
    shown = page.locator("#new-token")
    await expect(shown).to_contain_text("shown only this once")
    secret = (await shown.locator("code").inner_text()).strip()
    assert secret.startswith("upt_")
    await screenshot(page, "account-token-created")
    async with httpx.AsyncClient(base_url=uptimed.url, headers={"Authorization": f"Bearer {secret}"}) as api:
        assert (await api.get("/api/v1/me")).json()["username"] == "alice"
        row = page.locator("tr", has_text="deploy script")
        await expect(row).to_contain_text(secret[:8])
        await row.get_by_role("button", name="Revoke").click()
        confirm = page.get_by_role("dialog", name="Are you sure?")
        await expect(confirm).to_contain_text("Scripts using it stop working at once.")
        await confirm.get_by_role("button", name="Revoke").click()
        await expect(page.get_by_role("status")).to_contain_text("revoked")
        await expect(page.locator("tr", has_text="deploy script")).to_contain_text("revoked")
        assert (await api.get("/api/v1/me")).status_code == 401


async def test_two_factor_enrolment_and_sign_in_with_a_code_and_a_recovery_code(
    page: Page, page_errors: list[str], screenshot: Shoot, launch: Launch
) -> None:
    uptimed = await launch("")
    await sign_in(page, uptimed)
    await open_account(page)
    await page.get_by_role("button", name="Set up two-factor sign-in").click()
    await expect(page.locator("figure.qr-code svg")).to_be_visible()
    await screenshot(page, "account-two-factor-qr")
    totp = pyotp.TOTP((await page.locator("#totp-secret").inner_text()).strip())
    await page.get_by_label("Code from the app").fill(totp.now())
    await page.get_by_role("button", name="Turn on").click()
    codes_box = page.locator("#recovery-codes")
    await expect(codes_box).to_contain_text("shown only now")
    codes = [c.strip() for c in await codes_box.locator("code").all_inner_texts()]
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", c) for c in codes)
    await screenshot(page, "account-recovery-codes")

    await sign_out(page)
    await password_step(page, uptimed, PASSWORD)
    await expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    await assert_labelled(page)
    await screenshot(page, "sign-in-second-step")
    await page.get_by_label("Code from your authenticator app").fill("000000")
    await page.get_by_role("button", name="Verify").click()
    await expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    # The enrolment spent this step's code; the next step's is within the allowed drift.
    await page.get_by_label("Code from your authenticator app").fill(totp.at(time.time() + 30))
    await page.get_by_role("button", name="Verify").click()
    await expect(page.get_by_role("heading", name="Monitors", exact=True)).to_be_visible()

    await sign_out(page)
    await password_step(page, uptimed, PASSWORD)
    await page.get_by_label("Code from your authenticator app").fill(codes[0])
    await page.get_by_role("button", name="Verify").click()
    await expect(page.get_by_role("heading", name="Monitors", exact=True)).to_be_visible()
    await open_account(page)
    await expect(page.locator("#two-factor")).to_contain_text("9 recovery codes left")
    expected_refusals(page_errors, 401)


async def test_api_docs_render_under_their_content_security_policy(page: Page, launch: Launch) -> None:
    uptimed = await launch("")
    response = await page.goto(uptimed.at("/docs"))
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    # Swagger UI ran (its inline start-up script is allowed by its hash) and read the OpenAPI document.
    await expect(page.get_by_role("heading", name=re.compile("uptimed"))).to_be_visible()
    await expect(page.get_by_text("/api/v1/monitors").first).to_be_visible()
