"""The dashboard's device page in a real headless Chromium for node-opcua's value types (issue 12).

node-opcua data server -> gateway -> Mosquitto -> platform -> browser: an enumeration shows its
name, an array and a structure their JSON, a DateTime a time, a UInt64 above 2^63 its exact
digits; arrays are not offered for charting. Needs Debian's `chromium` and the Python package
playwright (the system browser, never playwright's own). A screenshot goes to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import aiohttp
import pytest
from gwtest_node_server import DATA_ROOT, NodeServer
from gwtest_support import gateway_running, gateway_settings
from plant_harness import bearer, platform_settings_for, token_for, until

from plantwire.broker import MosquittoProcess
from plantwire_gateway.settings import DeviceConfig
from plantwire_platform.service import platform_running

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is missing: apt-get install chromium", allow_module_level=True)
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the Python package playwright is missing"
)

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]


async def test_device_page_shows_each_type_as_a_person_reads_it(
    node_data_server: NodeServer, mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    dev = f"{unique_id}-ui"
    device = DeviceConfig(
        id=dev, endpoint=node_data_server.endpoint, root=DATA_ROOT, publishing_interval_ms=100,
        include=["Vector", "State", "Position", "Started", "Counter", "Label"],
    )  # fmt: skip
    settings = platform_settings_for(mosquitto, tmp_path / "platform", f"p-{unique_id}")
    token = token_for(settings)
    gw = gateway_settings(unique_id, mosquitto, tmp_path / "gw", [device])
    async with (
        asyncio.timeout(90),
        platform_running(settings) as running,
        aiohttp.ClientSession(running.url, headers=bearer(token)) as http,
    ):
        await running.ingest.wait_subscribed()
        async with gateway_running(gw):

            async def all_values() -> bool:
                async with http.get("/api/latest", params={"device": dev}) as r:
                    return r.status == 200 and len((await r.json())["values"]) == 6

            await until(all_values)
            async with http.post("/api/login-links", json={}) as r:
                link = (await r.json())["path"]
            async with playwright_api.async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                try:
                    page = await browser.new_page(viewport={"width": 1360, "height": 880})
                    page.set_default_timeout(30_000)
                    errors: list[str] = []
                    page.on("pageerror", lambda e: errors.append(str(e)))
                    await page.goto(running.url + link)
                    await page.goto(running.url + f"/#/devices/{dev}")

                    def cell(tag: str):  # type: ignore[no-untyped-def]
                        return page.locator(f'tr[data-tag="{tag}"] .live-value')

                    await cell("State").wait_for()
                    assert await cell("State").inner_text() == "Running (1)"
                    assert await cell("Vector").inner_text() == "[57,114,-57]"
                    assert await cell("Position").inner_text() == '{"Low":1.5,"High":3.25}'
                    assert await cell("Started").inner_text() == "2026-01-02T03:04:05.123Z"
                    assert await cell("Label").inner_text() == "Fräse läuft"
                    assert int(await cell("Counter").inner_text()) > 2**63
                    assert await page.locator('input[data-chart-tag="Vector"]').count() == 0
                    assert await page.locator('input[data-chart-tag="State"]').count() == 0
                    ARTIFACTS.mkdir(exist_ok=True)
                    await page.screenshot(path=str(ARTIFACTS / "dashboard-value-types.png"), full_page=True)
                    assert errors == []
                finally:
                    await browser.close()
