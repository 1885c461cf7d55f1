"""A running plant for the command tests: simulators, platform, gateway, all real, on the session broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from plant_harness import bearer, gateway_for, platform_settings_for, token_for

from plantwire.broker import MosquittoProcess, free_port
from plantwire_gateway.service import Gateway
from plantwire_platform.service import RunningPlatform, platform_running
from plantwire_sims.machine import SimMachine


@dataclass
class Plant:
    gateway_id: str
    platform: RunningPlatform
    http: aiohttp.ClientSession
    gw_dir: Path
    broker: MosquittoProcess
    machines: dict[str, SimMachine] = field(default_factory=dict)
    gateway: Gateway | None = None
    task: asyncio.Task[None] | None = None
    token: str = ""
    """The admin token `http` sends (for the CLI: --token or PLANTWIRE_TOKEN)."""

    async def start_gateway(self, devices: list[SimMachine]) -> Gateway:
        gateway = gateway_for(self.gateway_id, self.broker, self.gw_dir, devices)
        self.gateway = gateway
        self.task = asyncio.create_task(gateway.run())
        return gateway

    async def stop_gateway(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, path, **kwargs) as resp:
            return resp.status, await resp.json()

    async def new_token(self, name: str, scope: str) -> dict[str, str]:
        """Headers with a new token named `name` (made through the API: valid at once)."""
        code, body = await self.request("POST", "/api/tokens", json={"name": name, "scope": scope})
        assert code == 201, body
        return bearer(body["token"])

    async def latest(self, device: str) -> dict[str, Any]:
        code, body = await self.request("GET", "/api/latest", params={"device": device})
        return {v["tag"]: v["value"] for v in body["values"]} if code == 200 else {}

    async def device_state(self, device: str) -> tuple[str | None, str | None]:
        code, body = await self.request("GET", f"/api/devices/{device}")
        return (body["state"], body["error"]) if code == 200 else (None, None)


@contextlib.asynccontextmanager
async def running_plant(
    broker: MosquittoProcess, tmp_path: Path, gw_id: str, profiles: dict[str, str]
) -> AsyncIterator[Plant]:
    """Machines by name -> profile, and a platform; the test starts the gateway (`start_gateway`)."""
    async with contextlib.AsyncExitStack() as stack:
        machines = {
            name: await stack.enter_async_context(SimMachine(profile, name, free_port(), rate_hz=10, seed=i))
            for i, (name, profile) in enumerate(profiles.items(), start=1)
        }
        settings = platform_settings_for(broker, tmp_path, f"p-{gw_id}")
        admin = token_for(settings)
        platform = await stack.enter_async_context(platform_running(settings))
        await platform.ingest.wait_subscribed()
        http = await stack.enter_async_context(
            aiohttp.ClientSession(base_url=platform.url, headers=bearer(admin))
        )
        plant = Plant(gw_id, platform, http, tmp_path / "gw", broker, machines, token=admin)
        stack.push_async_callback(plant.stop_gateway)
        yield plant
