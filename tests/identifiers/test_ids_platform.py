"""Identifiers in the running platform: a real CNC simulator, gateway, Mosquitto and platform.

The device and its gateway get identifiers as soon as the meta is stored (GET /api/devices/{d}
carries it), and the parts app mints one identifier per part from the CNC's part counter, which
resolves through GET /api/handles/... like any other. The simulator's programs are shortened so
that parts come every few seconds instead of every minute; everything else is the real path.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from plant_harness import bearer, gateway_for, gateway_running, platform_settings_for, token_for, until

from plantwire.broker import MosquittoProcess, free_port
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.identifiers.running import identifiers_path
from plantwire_platform.service import platform_running
from plantwire_sims import cnc
from plantwire_sims.machine import SimMachine

pytestmark = pytest.mark.integration

FAST_CYCLE_S = 6.5
"""Cutting takes cycle - LOAD_UNLOAD_S (5 s): 1.5 s of cutting, then the part is swapped."""


def _values(body: dict[str, Any]) -> dict[str, Any]:
    return {v["type"]: v["data"]["value"] for v in body["values"]}


async def _json(
    http: aiohttp.ClientSession, path: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with http.get(path, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_devices_gateways_and_parts_get_identifiers_that_resolve(
    mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = tuple(dataclasses.replace(p, cycle_s=FAST_CYCLE_S) for p in cnc.PROGRAMS)
    monkeypatch.setattr(cnc, "PROGRAMS", fast)
    name, gw_id = f"cnc-{unique_id}", f"gw-{unique_id}"
    settings = platform_settings_for(mosquitto, tmp_path, f"p-{unique_id}", {"enabled": ["parts"]})
    public = f"http://127.0.0.1:{settings.http.port}"  # the default: the platform's own address
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(asyncio.timeout(120))
        machine = await stack.enter_async_context(SimMachine("cnc", name, free_port(), rate_hz=10, seed=4))
        platform = await stack.enter_async_context(platform_running(settings))
        await platform.ingest.wait_subscribed()
        await stack.enter_async_context(
            gateway_running(gateway_for(gw_id, mosquitto, tmp_path / "gw", [machine]))
        )
        http = await stack.enter_async_context(aiohttp.ClientSession(platform.url))
        token = bearer(token_for(settings, scope=Scope.READ))  # the device API needs one; resolution not

        async def named() -> bool:
            status, body = await _json(http, f"/api/devices/{name}", token)
            return status == 200 and body["identifier"] is not None

        await until(named, 0.2)
        device_id = f"0.TEST/device.{name}"
        _, device = await _json(http, f"/api/devices/{name}", token)
        assert device["identifier"] == device_id
        _, listing = await _json(http, "/api/devices", token)
        assert [d["identifier"] for d in listing["devices"] if d["id"] == name] == [device_id]

        status, handle = await _json(http, f"/api/handles/{device_id}")
        assert status == 200 and handle["responseCode"] == 1 and handle["handle"] == device_id
        values = _values(handle)
        assert values["URL"] == f"{public}/api/devices/{name}"
        assert values["gateway"] == gw_id
        assert "endpoint" not in values  # scope read: not shown without a token
        status, gateway = await _json(http, f"/api/handles/0.TEST/gateway.{gw_id}")
        assert status == 200 and gateway["responseCode"] == 1
        assert identifiers_path(settings.store.path.parent).is_file()

        # A part: the parts app mints it when the second counted cycle ends, emits it as a tag.
        async def last_part() -> str | None:
            _, latest = await _json(http, f"/api/latest?device={name}", token)
            found = [v["value"] for v in latest["values"] if v["tag"] == "parts/LastPart"]
            return found[0] if found else None

        async def minted() -> bool:
            return await last_part() is not None

        await until(minted, 0.3)
        part = await last_part()
        assert part is not None and part.startswith(f"0.TEST/part.{name}.")
        count = int(part.rsplit(".", 1)[1])
        status, body = await _json(http, f"/api/handles/{part}")
        assert status == 200 and body["responseCode"] == 1
        values = _values(body)
        assert values["machine"] == name
        assert values["program"] in {p.name for p in fast}
        assert values["result"] in ("ok", "reject")
        assert values["start"] < values["end"]
        assert values["URL"] == f"{public}/api/handles/{part}"
        counts = await asyncio.to_thread(
            platform.store.series, name, "Production/PartCount", 0, 2**62, 100_000
        )
        assert count in {p.value for p in counts}  # the counter value the machine reported

        async with http.get(f"/api/handles/{part}/qr.svg") as resp:
            assert resp.status == 200 and resp.content_type == "image/svg+xml"
            assert "<svg" in await resp.text()
        status, missing = await _json(http, f"/api/handles/0.TEST/part.{name}.1")
        assert (status, missing["responseCode"]) == (404, 100)
