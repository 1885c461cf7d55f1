"""The app host with a real SQLite store and live bus: lifecycle, isolation, REST routes, permissions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from plantwire.wire import Value, now_us
from plantwire_platform.apps import App, LivePoint, PermissionDenied
from plantwire_platform.apps.host import AppHost
from plantwire_platform.apps.loader import AppSpec, discover
from plantwire_platform.apps.manifest import Manifest
from plantwire_platform.ingest.live_bus import LiveBus
from plantwire_platform.ingest.stats import IngestStats
from plantwire_platform.settings import AppsSettings
from plantwire_platform.store.sqlite import SqliteStore
from plantwire_platform.web.app import create_app
from plantwire_platform.web.runtime import PlatformRuntime


def manifest(app_id: str, **extra: Any) -> Manifest:
    return Manifest(id=app_id, name=app_id, version="1.0.0", api_version=1, reads=("*:T",), **extra)


class Echo(App):  # type: ignore[type-arg]
    """Emits every point doubled; serves GET /apps/echo/last."""

    async def start(self) -> None:
        self.last: Value = None
        self.ctx.add_route("GET", "last", self.last_handler)

    async def last_handler(self, request: web.Request) -> web.Response:
        return web.json_response({"last": self.last})

    async def on_points(self, points: list[LivePoint]) -> None:
        for p in points:
            self.last = p.value
            self.ctx.emit(p.device, "double", float(p.value) * 2, ts=p.ts)  # type: ignore[arg-type]


class Raiser(App):  # type: ignore[type-arg]
    async def on_points(self, points: list[LivePoint]) -> None:
        raise RuntimeError("boom")


class Blocker(App):  # type: ignore[type-arg]
    async def on_points(self, points: list[LivePoint]) -> None:
        time.sleep(0.08)  # noqa: ASYNC251 (the point: synchronous code holding the loop)


class Flooder(App):  # type: ignore[type-arg]
    async def on_points(self, points: list[LivePoint]) -> None:
        for i in range(20_000):
            self.ctx.emit("dev-1", "flood", i, ts=points[0].ts + i)


class Writer(App):  # type: ignore[type-arg]
    async def start(self) -> None:
        self.outcomes: list[str] = []

    async def on_points(self, points: list[LivePoint]) -> None:
        for target in ("Spindle/SpeedSetpoint", "Axes/X"):
            try:
                await self.ctx.write("dev-1", target, 100.0)
                self.outcomes.append(f"ok {target}")
            except PermissionDenied:
                self.outcomes.append(f"denied {target}")
        await self.ctx.call("dev-1", "Reset")


def spec(app_id: str, cls: type[App], **extra: Any) -> AppSpec:  # type: ignore[type-arg]
    return AppSpec(manifest(app_id, **extra), cls, "test")


async def wait_for(cond: Callable[[], bool], what: str, limit_s: float = 15.0) -> None:
    async with asyncio.timeout(limit_s):
        while not cond():
            await asyncio.sleep(0.02)
    assert cond(), what


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore.open(tmp_path / "apps.sqlite")
    yield s
    s.close()


def publish(bus: LiveBus, value: float, device: str = "dev-1") -> None:
    bus.publish([LivePoint(device, "T", now_us(), value, 0)])


async def test_apps_run_isolated_failures_restart_blockers_stop_floods_are_bounded(
    store: SqliteStore,
) -> None:
    bus = LiveBus(asyncio.get_running_loop())
    settings = AppsSettings(restart_first_s=0.05, restart_max_s=0.2, block_budget_ms=50, block_strikes=2)
    specs = [spec("echo", Echo), spec("raiser", Raiser), spec("blocker", Blocker), spec("flooder", Flooder)]
    async with asyncio.timeout(60), AppHost(store, bus, settings, specs=(specs, [])) as host:
        await wait_for(lambda: all(s.status == "running" for s in host.slots.values()), "all running")
        for i in range(5):
            publish(bus, float(i))
            await asyncio.sleep(0.05)
        echo, raiser, blocker, flooder = (host.slots[k] for k in ("echo", "raiser", "blocker", "flooder"))
        await wait_for(lambda: echo.counters.emitted == 5, "echo emitted every point")
        # The raising app failed with its error and keeps being restarted (with backoff).
        await wait_for(lambda: raiser.restarts >= 1 and raiser.counters.errors >= 2, "raiser restarted")
        assert raiser.error == "RuntimeError: boom"
        # The blocking app held the loop over budget twice and was stopped for good.
        await wait_for(lambda: blocker.status == "failed", "blocker stopped")
        assert "held the event loop" in (blocker.error or "")
        # The flood was cut at the per-hook bound and the rest counted as drops.
        await wait_for(lambda: flooder.counters.drops >= 10_000, "flood counted")
        assert flooder.counters.emitted % 10_000 == 0 and flooder.counters.emitted > 0
        # Echo's points are stored as a derived series marked with the app, and reached the bus.
        tags = {t.tag: t.derived_by for t in store.list_tags("dev-1")}
        assert tags["echo/double"] == "echo"
        stored = store.series("dev-1", "echo/double", 0, now_us() + 1, 100)
        assert [p.value for p in stored] == [0.0, 2.0, 4.0, 6.0, 8.0]
        assert echo.counters.points_in == 5 and echo.status == "running"


async def test_slow_app_drops_its_own_points_with_a_counter(store: SqliteStore) -> None:
    class Slow(App):  # type: ignore[type-arg]
        async def on_points(self, points: list[LivePoint]) -> None:
            await asyncio.sleep(0.5)

    bus = LiveBus(asyncio.get_running_loop())
    async with (
        asyncio.timeout(30),
        AppHost(store, bus, AppsSettings(queue_max_points=5), specs=([spec("slow", Slow)], [])) as host,
    ):
        slot = host.slots["slow"]
        await wait_for(lambda: slot.status == "running", "running")
        publish(bus, 0.0)
        await wait_for(lambda: slot.counters.points_in == 1, "first point taken")
        for i in range(50):  # the app is asleep: only 5 fit in its buffer
            publish(bus, float(i))
        await wait_for(lambda: slot.counters.drops == 45, "drops counted")


async def test_rest_lifecycle_and_alarms(store: SqliteStore) -> None:
    class Alarmer(App):  # type: ignore[type-arg]
        async def on_points(self, points: list[LivePoint]) -> None:
            for p in points:
                if float(p.value) > 10:  # type: ignore[arg-type]
                    await self.ctx.raise_alarm(p.device, p.tag, "critical", f"T = {p.value}", ts=p.ts)
                else:
                    await self.ctx.clear_alarm(p.device, p.tag, ts=p.ts)

    bus = LiveBus(asyncio.get_running_loop())
    runtime = PlatformRuntime(store, lambda: IngestStats(connected=True), live_bus=bus)
    app = create_app(runtime)
    specs = [spec("alarmer", Alarmer), spec("echo", Echo)]
    async with asyncio.timeout(60), AppHost(store, bus, AppsSettings(), specs=(specs, [])) as host:
        runtime.apps = host
        async with TestClient(TestServer(app)) as client:
            await wait_for(lambda: host.slots["alarmer"].status == "running", "running")
            publish(bus, 20.0)
            await wait_for(lambda: len(store.list_alarms(active_only=True)) == 1, "alarm raised")
            r = await client.get("/api/alarms")
            (alarm,) = (await r.json())["alarms"]
            assert (alarm["app"], alarm["device"], alarm["tag"], alarm["severity"]) == (
                "alarmer",
                "dev-1",
                "T",
                "critical",
            )
            assert alarm["state"] == "active" and alarm["acked"] is False and alarm["raised_at"].endswith("Z")
            # Who acknowledged is the caller's token (none here: no auth middleware): a `by` is refused.
            r = await client.post(f"/api/alarms/{alarm['id']}/ack?by=ops")
            assert r.status == 400 and (await r.json())["error"]["code"] == "unknown_parameter"
            r = await client.post(f"/api/alarms/{alarm['id']}/ack")
            assert r.status == 200 and (await r.json())["acked_by"] == "anonymous"
            assert (await client.post("/api/alarms/999/ack")).status == 404
            publish(bus, 1.0)
            await wait_for(lambda: not store.list_alarms(active_only=True), "alarm cleared")
            assert (await (await client.get("/api/alarms")).json())["alarms"] == []
            (cleared,) = (await (await client.get("/api/alarms?state=all&app=alarmer")).json())["alarms"]
            assert cleared["state"] == "cleared" and cleared["cleared_at"] is not None
            assert (await client.get("/api/alarms?state=nope")).status == 400

            apps = {a["id"]: a for a in (await (await client.get("/api/apps")).json())["apps"]}
            assert (
                apps["alarmer"]["counters"]["alarms"] == 1 and apps["alarmer"]["routes"] == "/apps/alarmer/"
            )
            r = await client.post("/api/apps/echo/disable")
            body = await r.json()
            assert (body["status"], body["enabled"]) == ("disabled", False)
            assert (await client.get("/apps/echo/last")).status == 503
            r = await client.post("/api/apps/echo/enable")
            assert (await r.json())["enabled"] is True
            await wait_for(lambda: host.slots["echo"].status == "running", "echo back")
            publish(bus, 3.0)
            await wait_for(lambda: host.slots["echo"].counters.points_in >= 1, "echo got a point")
            r = await client.get("/apps/echo/last")
            assert r.status == 200 and (await r.json()) == {"last": 3.0}
            r = await client.get("/apps/echo/metrics")
            assert (await r.json())["counters"]["points_in"] >= 1
            r = await client.post("/api/apps/echo/restart")
            assert r.status == 200
            await wait_for(lambda: host.slots["echo"].status == "running", "echo restarted")
            assert (await client.post("/api/apps/nope/restart")).status == 404
            assert (await client.get("/apps/echo/nothing")).status == 404


async def test_write_and_call_need_the_manifest_permission_and_are_audited(store: SqliteStore) -> None:
    sent: list[tuple[str, str, str, tuple[Value, ...]]] = []

    async def command_sender(
        app_id: str, kind: str, device: str, target: str, args: tuple[Value, ...]
    ) -> str:
        assert app_id == "writer"
        sent.append((kind, device, target, args))
        return "ok"

    bus = LiveBus(asyncio.get_running_loop())
    writer = spec("writer", Writer, writes=("dev-*:Spindle/*",), calls=("dev-1:Re*",))
    async with (
        asyncio.timeout(30),
        AppHost(store, bus, AppsSettings(), command_sender, specs=([writer], [])) as host,
    ):
        await wait_for(lambda: host.slots["writer"].status == "running", "running")
        publish(bus, 1.0)
        await wait_for(lambda: len(sent) == 2, "commands sent")
        app_ctx = host.slots["writer"].ctx
        assert app_ctx is not None
    assert sent == [("write", "dev-1", "Spindle/SpeedSetpoint", (100.0,)), ("call", "dev-1", "Reset", ())]
    denied = [e for e in host.backend.audit_log if not e.allowed]
    assert [(e.action, e.device, e.target) for e in denied] == [("write", "dev-1", "Axes/X")]
    (entry,) = [e for e in store.list_audit(10) if e.user == "app:writer"]
    assert (entry.action, entry.device, entry.outcome) == ("write", "dev-1", "rejected")


async def test_bad_apps_are_reported_and_the_others_still_run(store: SqliteStore, tmp_path: Path) -> None:
    folder = tmp_path / "apps"
    (folder / "broken").mkdir(parents=True)
    (folder / "broken" / "manifest.toml").write_text(
        'id = "broken"\nname = "B"\nversion = "1.0"\napi_version = 7\n'
    )
    (folder / "syntax").mkdir()
    (folder / "syntax" / "manifest.toml").write_text("id = ")
    specs, problems = discover(folder, builtin=True)
    errors = {p.app: p.error for p in problems}
    assert "api_version" in errors["broken"] and "app 'broken'" in errors["broken"]
    assert "not valid TOML" in errors["syntax"]
    assert {s.manifest.id for s in specs} >= {"limit_alarms", "oee", "anomaly", "energy"}
    bus = LiveBus(asyncio.get_running_loop())
    settings = AppsSettings(path=folder, config={"oee": {"window_s": -5}})
    async with asyncio.timeout(30), AppHost(store, bus, settings) as host:
        await wait_for(lambda: host.slots["energy"].status == "running", "energy runs")
        await wait_for(lambda: host.slots["oee"].status == "disabled", "oee disabled by its bad config")
        assert "config.window_s" in (host.slots["oee"].error or "")
        assert host.slots["broken"].status == "failed"
