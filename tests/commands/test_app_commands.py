"""An app writes a setpoint through the platform's command path: same checks, real machine, audited."""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from pathlib import Path

import aiohttp
import pytest
from plant_harness import bearer, gateway_for, gateway_running, platform_settings_for, token_for, until

from plantwire.broker import MosquittoProcess, free_port
from plantwire_platform.service import platform_running
from plantwire_sims.machine import SimMachine

pytestmark = pytest.mark.integration

MANIFEST = """\
id = "setpointer"
name = "Setpointer"
version = "0.1.0"
api_version = 1
entry = "app:Setpointer"
reads = ["*:Spindle/Speed"]
writes = ["*:Spindle/SpeedSetpoint"]
"""

APP = """\
from plantwire_platform.apps import App, InvalidCommand, LivePoint


class Setpointer(App):
    done: set[str] = set()

    async def on_points(self, points: list[LivePoint]) -> None:
        for device in {p.device for p in points} - self.done:
            self.done.add(device)
            reply = await self.ctx.write(device, "Spindle/SpeedSetpoint", 4321.0)
            self.ctx.metrics["reply_value"] = reply.value
            try:
                await self.ctx.write(device, "Spindle/SpeedSetpoint", 99_999.0)  # beyond the range
            except InvalidCommand as err:  # the typed error an app gets, with its code and status
                self.ctx.metrics["rejected_status"] = err.status
                self.ctx.metrics["rejected_out_of_range"] = float(err.code == "out_of_range")
"""


async def test_an_app_writes_a_setpoint_that_reaches_the_machine(
    mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    apps = tmp_path / "apps" / "setpointer"
    apps.mkdir(parents=True)
    (apps / "manifest.toml").write_text(MANIFEST)
    (apps / "app.py").write_text(textwrap.dedent(APP))
    settings = platform_settings_for(
        mosquitto, tmp_path, f"p-{unique_id}", apps={"path": tmp_path / "apps", "builtin": False}
    )
    cnc = f"{unique_id}-cnc"
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(asyncio.timeout(60))
        machine = await stack.enter_async_context(SimMachine("cnc", cnc, free_port(), rate_hz=10))
        admin = token_for(settings)
        platform = await stack.enter_async_context(platform_running(settings))
        await platform.ingest.wait_subscribed()
        await stack.enter_async_context(
            gateway_running(gateway_for(unique_id, mosquitto, tmp_path / "gw", [machine]))
        )
        http = await stack.enter_async_context(
            aiohttp.ClientSession(base_url=platform.url, headers=bearer(admin))
        )

        async def latest_setpoint_is_written() -> bool:
            async with http.get("/api/latest", params={"device": cnc}) as resp:
                values = {v["tag"]: v["value"] for v in (await resp.json()).get("values", [])}
            return values.get("Spindle/SpeedSetpoint") == 4321.0

        await until(latest_setpoint_is_written)
        async with http.get("/apps/setpointer/metrics") as resp:
            metrics = await resp.json()
        async with http.get("/api/audit") as resp:
            audit = [e for e in (await resp.json())["entries"] if e["user"] == "app:setpointer"]

    # The write was read back from the machine, and the out-of-range one refused before sending.
    assert metrics["metrics"]["reply_value"] == 4321.0
    assert metrics["metrics"]["rejected_status"] == 422
    assert metrics["metrics"]["rejected_out_of_range"] == 1.0
    assert sorted((e["action"], e["outcome"]) for e in audit) == [("write", "ok"), ("write", "rejected")]
