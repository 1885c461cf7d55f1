"""The dashboard's identifier pieces in Debian's Chromium, on a running platform fed by a real CNC
simulator and gateway: the device page shows the device's identifier and QR code, and the
overview's resolve box resolves it. Screenshots go to test-artifacts/."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path

import aiohttp
import pytest
from plant_harness import bearer, gateway_for, gateway_running, platform_settings_for, token_for, until

from plantwire.broker import MosquittoProcess, free_port
from plantwire_platform.service import platform_running
from plantwire_sims.machine import SimMachine

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is missing: apt-get install chromium", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.async_api", reason="pip install playwright")

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def test_device_page_shows_identifier_and_qr_and_overview_resolves_it(
    mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    name, gw_id = f"cnc-{unique_id}", f"gw-{unique_id}"
    settings = platform_settings_for(mosquitto, tmp_path, f"p-{unique_id}", {"enabled": []})
    errors: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(asyncio.timeout(120))
        machine = await stack.enter_async_context(SimMachine("cnc", name, free_port(), rate_hz=5, seed=2))
        platform = await stack.enter_async_context(platform_running(settings))
        await platform.ingest.wait_subscribed()
        await stack.enter_async_context(
            gateway_running(gateway_for(gw_id, mosquitto, tmp_path / "gw", [machine]))
        )
        http = await stack.enter_async_context(
            aiohttp.ClientSession(platform.url, headers=bearer(token_for(settings)))
        )

        async def named() -> bool:
            async with http.get(f"/api/devices/{name}") as resp:
                return resp.status == 200 and (await resp.json())["identifier"] is not None

        await until(named, 0.2)
        identifier = f"0.TEST/device.{name}"

        pw = await stack.enter_async_context(playwright_api.async_playwright())
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        stack.push_async_callback(browser.close)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        page.on("pageerror", lambda e: errors.append(str(e)))
        ARTIFACTS.mkdir(exist_ok=True)

        # Log in as the demo does: a one-time login link made with an admin token.
        async with http.post("/api/login-links", json={}) as resp:
            assert resp.status == 201, await resp.text()
            link = (await resp.json())["path"]
        await page.goto(platform.url + link)
        await page.goto(f"{platform.url}/#/devices/{name}")
        panel = page.locator(".page-head .identifier-panel")
        await panel.wait_for()
        assert await panel.get_attribute("data-identifier") == identifier
        assert await panel.locator("code.identifier").text_content() == identifier
        await page.wait_for_function("() => document.querySelector('.identifier-qr').naturalWidth > 0")
        await page.screenshot(path=str(ARTIFACTS / "identifiers-device.png"))

        await page.goto(f"{platform.url}/#/")
        await page.locator("[data-view=overview] tr[data-device]").first.wait_for()
        await page.fill(".identifier-resolve input[name=identifier]", identifier)
        await page.click(".identifier-resolve button[type=submit]")
        url_cell = page.locator(".identifier-result .identifier-values tr[data-type=URL] td").nth(2)
        await url_cell.wait_for()
        assert await url_cell.text_content() == f"{platform.url}/api/devices/{name}"
        gateway_cell = page.locator(".identifier-values tr[data-type=gateway] td").nth(2)
        assert await gateway_cell.text_content() == gw_id
        # the box survives the overview's periodic redraw, result and all
        first_row = await page.locator("[data-view=overview] tr[data-device]").first.element_handle()
        await page.wait_for_function("(row) => !document.contains(row)", arg=first_row)
        assert await url_cell.count() == 1
        box = page.locator(".identifier-card")
        await box.scroll_into_view_if_needed()
        await page.screenshot(path=str(ARTIFACTS / "identifiers-overview.png"), full_page=True)
    assert errors == []
