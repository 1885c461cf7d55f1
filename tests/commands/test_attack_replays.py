"""Issue 11's attacks replayed against a running platform (real machine, gateway, broker, store):
each is refused, changes nothing on the machine, and is counted in /metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cmdtest_plant import Plant, running_plant
from plant_harness import until

from plantwire.broker import MosquittoProcess

pytestmark = pytest.mark.integration

SETPOINT = "Spindle/SpeedSetpoint"
WRITE = {"tag": SETPOINT, "value": 1234.0}


async def raw(plant: Plant, method: str, path: str, **kw: Any) -> int:
    """A request without the plant's admin token (a fresh session: no default headers)."""
    async with aiohttp.ClientSession() as http:
        async with http.request(method, plant.platform.url + path, allow_redirects=False, **kw) as resp:
            return resp.status


def counter(metrics: str, name: str, reason: str) -> float:
    prefix = f'plantwire_platform_{name}{{reason="{reason}"}} '
    (line,) = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


async def test_unauthenticated_wrong_scope_and_cross_site_requests_change_nothing(
    mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    cnc = f"{unique_id}-cnc"
    async with asyncio.timeout(90), running_plant(mosquitto, tmp_path, unique_id, {cnc: "cnc"}) as plant:
        await plant.start_gateway(list(plant.machines.values()))

        async def streaming() -> bool:
            return SETPOINT in await plant.latest(cnc)

        await until(streaming)
        before = (await plant.latest(cnc))[SETPOINT]
        assert before != WRITE["value"]
        reader = await plant.new_token("viewer", "read")
        write = f"/api/devices/{cnc}/write"

        # No token: nothing readable, nothing writable; probes stay open for orchestrators.
        assert await raw(plant, "GET", "/healthz") == 200
        assert await raw(plant, "GET", "/api/devices") == 401
        assert await raw(plant, "GET", "/metrics") == 401
        assert await raw(plant, "POST", write, json=WRITE) == 401
        assert (
            await raw(plant, "POST", write, json=WRITE, headers={"Authorization": "Bearer pw_forged"}) == 401
        )
        # A read token may look, not act: 403 on write, call, attach, detach, app control.
        assert await raw(plant, "GET", "/api/devices", headers=reader) == 200
        for method, path in (
            ("POST", write),
            ("POST", f"/api/devices/{cnc}/call"),
            ("POST", f"/api/gateways/{unique_id}/devices"),
            ("POST", "/api/apps/threshold/disable"),
        ):
            assert await raw(plant, method, path, json=WRITE, headers=reader) == 403, path
        detach = f"/api/gateways/{unique_id}/devices/{cnc}"
        assert await raw(plant, "DELETE", detach, headers=reader) == 403
        # The reported attack: a foreign page posts text/plain; refused even with a valid credential.
        forged = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
        assert await raw(plant, "POST", write, data='{"tag":"x","value":1}', headers=forged) == 403
        same_site_plain = {**plant.http.headers, "Content-Type": "text/plain"}
        assert await raw(plant, "POST", write, data=str(WRITE), headers=same_site_plain) == 415
        # The live stream from a foreign page: refused before any credential is looked at.
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(
                    plant.platform.url + "/api/stream", origin="http://evil.example", headers=reader
                )
            assert refused.value.status == 403

        # Nothing reached the machine: the setpoint is unchanged and the audit has no write.
        assert (await plant.latest(cnc))[SETPOINT] == before
        code, audit = await plant.request("GET", "/api/audit", params={"device": cnc})
        assert code == 200 and [e for e in audit["entries"] if e["action"] == "write"] == []
        # Every refusal is counted, each under its reason.
        async with plant.http.get("/metrics") as resp:
            metrics = await resp.text()
        assert counter(metrics, "auth_failures_total", "missing_credentials") == 3
        assert counter(metrics, "auth_failures_total", "unknown_token") == 1
        assert counter(metrics, "auth_refused_total", "insufficient_scope") == 5
        assert counter(metrics, "auth_refused_total", "origin_not_allowed") == 2
        assert counter(metrics, "auth_refused_total", "unsupported_media_type") == 1

        # The same write with an operate token goes through, recorded under the token's name only.
        operator = {**await plant.new_token("night-shift", "operate"), "X-Plantwire-User": "mallory"}
        code, body = await plant.request("POST", write, json=WRITE, headers=operator)
        assert code == 200, body
        code, audit = await plant.request("GET", "/api/audit", params={"device": cnc})
        (entry,) = [e for e in audit["entries"] if e["action"] == "write"]
        assert (entry["user"], entry["outcome"]) == ("night-shift", "ok")
