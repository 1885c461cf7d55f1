"""static/identifiers.js in Debian's Chromium: a device's identifier with its QR code, and the
resolve box, on a small page served next to the real Handle routes."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import RunningPlatform

import plantwire_platform

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is missing: apt-get install chromium", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.async_api", reason="pip install playwright")

STATIC = Path(plantwire_platform.__file__).parent / "static"
PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>ids</title>
<script src="/static/identifiers.js"></script></head><body><div id="panel"></div><div id="box"></div>
<script>
fetch("/device").then((r) => r.json()).then((d) => {
  document.getElementById("panel").append(PlantwireIdentifiers.panel(d));
  document.getElementById("box").append(PlantwireIdentifiers.resolveBox());
});
</script></body></html>"""


@pytest.fixture
async def page_url(platform: RunningPlatform) -> AsyncIterator[str]:
    """The Handle app plus a test page, a device JSON (as GET /api/devices/{d} will carry) and the JS."""
    async with asyncio.timeout(10):
        handle = await platform.service.registry.ensure_device(
            "line-1", "cnc-1", {"endpoint": "opc.tcp://h:1"}
        )

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html")

    async def device(request: web.Request) -> web.Response:
        return web.json_response({"id": "cnc-1", "identifier": handle.name})

    async def script(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "identifiers.js")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/device", device)
    app.router.add_get("/static/identifiers.js", script)
    app.router.add_route("*", "/api/{tail:.*}", _proxy_to(platform))
    runner = web.AppRunner(app)
    async with asyncio.timeout(10):
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    async with asyncio.timeout(10):
        await runner.cleanup()


def _proxy_to(platform: RunningPlatform) -> Any:
    async def proxy(request: web.Request) -> web.Response:
        async with platform.http.get(request.path_qs) as resp:
            return web.Response(body=await resp.read(), status=resp.status, content_type=resp.content_type)

    return proxy


async def test_device_panel_shows_identifier_and_qr_and_the_box_resolves(page_url: str) -> None:
    errors: list[str] = []
    async with asyncio.timeout(60), playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            page.set_default_timeout(20_000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(page_url)
            panel = page.locator(".identifier-panel")
            assert await panel.get_attribute("data-identifier") == "0.TEST/device.cnc-1"
            await page.wait_for_function("document.querySelector('.identifier-qr').naturalWidth > 0")
            await page.fill("input[name=identifier]", "hdl:0.TEST/device.cnc-1")
            await page.click("button[type=submit]")
            row = page.locator(".identifier-values tr[data-type=URL] td").nth(2)
            assert await row.text_content() == "http://127.0.0.1:8080/api/devices/cnc-1"
            assert await page.locator(".identifier-values tr[data-type=endpoint]").count() == 0
            await page.fill("input[name=identifier]", "0.TEST/device.nope")
            await page.click("button[type=submit]")
            await page.wait_for_selector(".identifier-result .error")
            assert "not found" in (await page.locator(".identifier-result .error").text_content() or "")
        finally:
            await browser.close()
    assert errors == []
