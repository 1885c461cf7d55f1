"""The dashboard in a real headless Chromium, against a running platform fed by real simulators.

Needs Debian's `chromium` (/usr/bin/chromium) and the Python package `playwright` (never its bundled
browsers: the tests launch the system Chromium). Screenshots of every view go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from plant_harness import bearer, gateway_for, gateway_running, platform_settings_for, token_for

from plantwire.broker import MosquittoProcess, free_port
from plantwire.wire import now_us
from plantwire_platform.service import RunningPlatform, platform_running
from plantwire_platform.settings import PlatformSettings
from plantwire_sims.machine import SimMachine

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(
        "Chromium is missing: install Debian's package (apt-get install chromium)", allow_module_level=True
    )
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the Python package playwright is missing (pip install playwright)"
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BROWSER_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30_000


@dataclass
class Plant:
    """Simulators -> gateway -> Mosquitto -> platform, with a platform that can be restarted."""

    broker: MosquittoProcess
    settings: PlatformSettings
    machines: list[SimMachine]
    gateway_id: str
    token: str = ""
    """An admin token: the tests' own API calls send it, and the browser logs in with a link for it."""
    platform: RunningPlatform | None = None
    _platform_stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    @property
    def url(self) -> str:
        return f"http://{self.settings.http.host}:{self.settings.http.port}"

    def http(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(base_url=self.url, headers=bearer(self.token))

    async def log_in(self, page: Any) -> None:
        """Log the browser in as the demo does: a one-time login link made with the admin token."""
        async with self.http() as http, http.post("/api/login-links", json={}) as resp:
            assert resp.status == 201, await resp.text()
            link = (await resp.json())["path"]
        await page.goto(self.url + link)
        assert page.url == self.url + "/", page.url

    async def start_platform(self) -> None:
        self._platform_stack = contextlib.AsyncExitStack()
        self.platform = await self._platform_stack.enter_async_context(platform_running(self.settings))
        await self.platform.ingest.wait_subscribed()

    async def stop_platform(self) -> None:
        await self._platform_stack.aclose()
        self.platform = None


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def plant(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Plant]:
    tmp = tmp_path_factory.mktemp("dashboard")
    gw_id = "dash"
    # A broker of its own: the pages must show this plant only, not devices other tests left retained.
    mosquitto = MosquittoProcess(port=free_port(), data_dir=tmp / "mosquitto")
    await asyncio.to_thread(mosquitto.start)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(mosquitto.stop)
        machines = [
            await stack.enter_async_context(SimMachine(profile, name, free_port(), rate_hz=5, seed=i))
            for i, (profile, name) in enumerate([("cnc", "cnc-1"), ("pump", "pump-1"), ("meter", "meter-1")])
        ]
        settings = platform_settings_for(mosquitto, tmp, "p-dashboard")
        plant = Plant(mosquitto, settings, machines, gw_id, token_for(settings))
        await plant.start_platform()
        stack.push_async_callback(lambda: plant.stop_platform() if plant.platform else asyncio.sleep(0))
        await stack.enter_async_context(gateway_running(gateway_for(gw_id, mosquitto, tmp / "gw", machines)))
        async with asyncio.timeout(60), plant.http() as http:
            while True:  # every device online with data before any page is opened
                async with http.get("/api/devices") as resp:
                    devices = (await resp.json())["devices"]
                if len(devices) == 3 and all(d["state"] == "online" and d["last_seq"] > 2 for d in devices):
                    break
                await asyncio.sleep(0.1)
        yield plant


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            args=BROWSER_ARGS,
            headless=True,
            viewport={"width": 1360, "height": 880},
        )
        yield context
        await context.close()


@dataclass
class Page:
    page: Any
    errors: list[str]


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Any, plant: Plant) -> AsyncIterator[Page]:
    p = await browser.new_page()
    await plant.log_in(p)
    p.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    p.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    p.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    yield Page(p, errors)
    await p.close()


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


async def received(page: Any) -> int:
    return int(await page.locator("[data-chart]").get_attribute("data-received") or 0)


async def test_overview_lists_the_running_devices_without_console_errors(plant: Plant, page: Page) -> None:
    async with asyncio.timeout(60):
        await page.page.goto(plant.url + "/")
        for m in plant.machines:
            row = page.page.locator(f'tr[data-device="{m.name}"]')
            await row.wait_for()
            assert "online" in await row.locator(".pill").inner_text()
        await page.page.locator('#conn[data-state="live"]').wait_for()
        # Values/s of a device comes from the live stream: wait until it is counted.
        await page.page.wait_for_function(
            """() => [...document.querySelectorAll('tr[data-device] td.rate')]
                     .every(td => parseFloat(td.textContent) > 0)"""
        )
        assert await page.page.locator(f'section[data-gateway="{plant.gateway_id}"]').count() == 1
        await shot(page.page, "overview")
        assert page.errors == []


async def test_overview_search_and_state_filter_narrow_the_device_page(plant: Plant, page: Page) -> None:
    names = sorted(m.name for m in plant.machines)
    async with asyncio.timeout(60):
        await page.page.goto(plant.url + "/")
        await page.page.locator(f'tr[data-device="{names[0]}"]').wait_for()
        pager = page.page.locator("[data-page-range]")
        assert await pager.inner_text() == f"1\u2013{len(names)} of {len(names)}"
        assert await page.page.locator('button[data-page="next"]').is_disabled()
        await page.page.locator('input[data-filter="q"]').fill(names[-1].upper())
        await page.page.wait_for_function(
            "n => document.querySelectorAll('tr[data-device]').length === 1"
            " && document.querySelector(`tr[data-device='${n}']`) !== null",
            arg=names[-1],
        )
        assert await pager.inner_text() == "1\u20131 of 1 matching"
        await page.page.locator('select[data-filter="state"]').select_option("offline")
        await page.page.locator("[data-device-list] .note", has_text="No device matches").wait_for()
        await page.page.locator('select[data-filter="state"]').select_option("")
        await page.page.locator('input[data-filter="q"]').fill("")
        await page.page.wait_for_function(
            "n => document.querySelectorAll('tr[data-device]').length === n", arg=len(names)
        )
        assert page.errors == []


async def test_device_page_shows_tags_and_the_chart_streams(plant: Plant, page: Page) -> None:
    async with asyncio.timeout(90):
        await page.page.goto(plant.url + "/#/devices/cnc-1")
        speed = page.page.locator('tr[data-tag="Spindle/Speed"]')
        await speed.wait_for()
        assert "rpm" in await speed.inner_text()
        assert await page.page.locator("tr[data-tag] .badge", has_text="writable").count() >= 1
        assert await page.page.locator("[data-chart] canvas").count() == 1
        # History first, then live points: the count of streamed points must grow.
        await page.page.locator('#conn[data-state="live"]').wait_for()
        before = await received(page.page)
        await page.page.wait_for_function(
            f"() => +document.querySelector('[data-chart]').dataset.received >= {before + 10}"
        )
        # Ticking another tag adds it to the chart (history loads, then it streams too).
        await page.page.locator('input[data-chart-tag="Axes/X"]').check()
        await page.page.locator(".u-legend .u-series", has_text="Axes/X").wait_for()
        await shot(page.page, "device")
        assert [e for e in page.errors if "404" not in e] == []


async def test_an_unknown_device_says_so(plant: Plant, page: Page) -> None:
    async with asyncio.timeout(60):
        await page.page.goto(plant.url + "/#/devices/no-such-press")
        note = page.page.locator('[data-error="unknown-device"]')
        await note.wait_for()
        text = await note.inner_text()
        assert "Unknown device" in text and "no-such-press" in text and "cnc-1" in text
        await shot(page.page, "unknown-device")


async def test_alarms_page_lists_active_and_recent_alarms(plant: Plant, page: Page) -> None:
    async with asyncio.timeout(60):
        await page.page.goto(plant.url + "/#/alarms")
        view = page.page.locator('[data-view="alarms"]')
        await view.wait_for()
        await view.locator('[data-alarms="active"]').wait_for()
        await view.locator('[data-alarms="recent"]').wait_for()
        await shot(page.page, "alarms")


async def test_an_active_alarm_is_listed_and_acknowledged_from_the_page(plant: Plant, page: Page) -> None:
    assert plant.platform is not None
    store = plant.platform.store
    alarm = await asyncio.to_thread(
        store.raise_alarm, "limit_alarms", "cnc-1", "Thermal/SpindleTemperature", "critical",
        "spindle at 71.5 degC, above 70", now_us(),
    )  # fmt: skip
    async with asyncio.timeout(60), plant.http() as http:
        await page.page.goto(plant.url + "/#/alarms")
        active = page.page.locator('[data-alarms="active"]')
        await active.get_by_text("spindle at 71.5 degC, above 70").wait_for()
        await shot(page.page, "alarms-active")
        await active.locator('button[data-action="ack"]').first.click()
        while True:
            async with http.get("/api/alarms", params={"state": "all"}) as resp:
                listed = {a["id"]: a for a in (await resp.json())["alarms"]}
            if listed[alarm.id]["acked"]:
                break
            await asyncio.sleep(0.1)
        await active.get_by_text("acked").first.wait_for()
    assert listed[alarm.id]["state"] == "active" and listed[alarm.id]["acked_at"] is not None
    assert page.errors == []


async def test_enabling_and_disabling_an_app_from_the_page_changes_the_api(plant: Plant, page: Page) -> None:
    async with asyncio.timeout(90), plant.http() as http:

        async def app_state(app_id: str) -> dict[str, Any]:
            async with http.get("/api/apps") as resp:
                assert resp.status == 200, "GET /api/apps"
                return next(a for a in (await resp.json())["apps"] if a["id"] == app_id)

        await page.page.goto(plant.url + "/#/apps")
        await page.page.locator('[data-view="apps"]').wait_for()
        await shot(page.page, "apps")
        async with http.get("/api/apps") as resp:
            assert resp.status == 200, "GET /api/apps"
            apps = (await resp.json())["apps"]
        assert apps, "no app installed"
        app_id = apps[0]["id"]
        card = page.page.locator(f'section[data-app="{app_id}"]')
        if not apps[0]["enabled"]:
            await card.locator('[data-action="enable"]').click()
            await card.locator('[data-action="disable"]').wait_for()
        await card.locator('[data-action="disable"]').click()
        while (await app_state(app_id))["enabled"]:
            await asyncio.sleep(0.1)
        assert (await app_state(app_id))["status"] == "disabled"
        await card.locator('[data-action="enable"]').click()
        while not (await app_state(app_id))["enabled"]:
            await asyncio.sleep(0.1)
        await card.locator('[data-action="disable"]').wait_for()
        assert (await app_state(app_id))["status"] != "disabled"


async def test_a_lost_stream_shows_stale_and_recovers_after_a_platform_restart(
    plant: Plant, page: Page
) -> None:
    async with asyncio.timeout(120):
        await page.page.goto(plant.url + "/#/devices/pump-1")
        await page.page.locator('#conn[data-state="live"]').wait_for()
        await page.page.wait_for_function(
            "() => +document.querySelector('[data-chart]').dataset.received > 0"
        )

        await plant.stop_platform()
        await page.page.locator('#conn[data-state="stale"]').wait_for()
        assert await page.page.locator("#stale-banner").is_visible()
        assert "stale" in (await page.page.locator("#stale-banner").inner_text()).lower()
        await shot(page.page, "stale")

        await plant.start_platform()
        # Sessions live in the platform's memory: a restart ends them, and the page asks for a login.
        await page.page.wait_for_url(plant.url + "/login")
        await plant.log_in(page.page)
        await page.page.goto(plant.url + "/#/devices/pump-1")
        await page.page.locator('#conn[data-state="live"]').wait_for()
        assert not await page.page.locator("#stale-banner").is_visible()
        # The view reloaded itself and streams again.
        await page.page.locator('tr[data-tag="Hydraulics/Flow"]').wait_for()
        await page.page.wait_for_function(
            "() => +document.querySelector('[data-chart]').dataset.received > 5"
        )
