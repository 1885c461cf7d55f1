"""The login page in Debian's Chromium: redirect to /login, a pasted token, a one-time link, and a
session that works for same-origin requests only with the scope of its token."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from auth_harness import Platform

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(
        "Chromium is missing: install Debian's package (apt-get install chromium)", allow_module_level=True
    )
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the Python package playwright is missing (pip install playwright)"
)

pytestmark = pytest.mark.integration
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
WAIT_MS = 20_000
WRITE = """async () => {
  const r = await fetch("/api/devices/cnc-1/write", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({tag: "t", value: 1})});
  return [r.status, await r.json()];
}"""


async def test_login_page_token_and_one_time_link_in_chromium(api: Platform) -> None:
    async with asyncio.timeout(120), playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = await (await browser.new_context()).new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            await page.goto(api.base + "/", timeout=WAIT_MS)
            assert page.url == api.base + "/login"  # a browser without a session goes to the login page

            await page.fill("#token", "pw_" + "x" * 43)
            await page.click("button[type=submit]")
            message = page.locator("#login-message")
            await message.wait_for(state="visible", timeout=WAIT_MS)
            assert "not valid" in await message.inner_text()

            await page.fill("#token", api.secrets["read"])
            await page.click("button[type=submit]")
            await page.wait_for_url(api.base + "/", timeout=WAIT_MS)
            assert "dashboard" in await page.title()
            assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script can read it
            status, body = await page.evaluate(WRITE)
            assert (status, body["error"]["code"]) == (403, "insufficient_scope")  # a read session
            assert api.done == []
            assert not [p for p in problems if "Content Security Policy" in p], problems

            _, link, _ = await api.request(
                "POST", "/api/login-links", json={}, headers=api.bearer(api.secrets["admin"])
            )
            other = await (await browser.new_context()).new_page()
            await other.goto(api.base + link["path"], timeout=WAIT_MS)
            assert other.url == api.base + "/"
            me: dict[str, Any] = await other.evaluate("async () => (await fetch('/api/whoami')).json()")
            assert (me["name"], me["via"]) == ("admin-token", "session")
            status, body = await other.evaluate(WRITE)  # same origin, JSON: allowed for this scope
            assert (status, body["by"]) == (200, "admin-token")
            assert len(api.done) == 1
            third = await (await browser.new_context()).new_page()
            await third.goto(api.base + link["path"], timeout=WAIT_MS)  # the link is spent
            assert third.url == api.base + "/login?link=invalid"
            await third.locator("#login-message").wait_for(state="visible", timeout=WAIT_MS)
        finally:
            await browser.close()
