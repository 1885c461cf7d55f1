"""node-opcua servers -> real gateway -> real Mosquitto -> real platform -> REST (issue 12, platform side).

- Every value type of tests/opcua_interop/data_server.js is stored and read back through the REST API
  in the shape docs/wire.md gives (arrays as arrays, UInt64 above 2^63 exact, enumerations with
  their names in the tag list), and aggregates over them follow the documented rules.
- Attaching through the platform's REST API: a server with operation limits of 20 attaches; the
  secure-only server answers each wrong setting with its own code (HTTP 502) and attaches once
  the settings are right.
- A gateway killed with SIGKILL: the broker publishes its last will and the platform shows its
  devices offline (`gateway_offline`) until the gateway is back, when their own state applies again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gwtest_node_server import DATA_ROOT, NodeServer
from gwtest_nodeopcua import NodeServer as SecureServer
from gwtest_nodeopcua import node_server
from gwtest_support import gateway_running, gateway_settings
from plant_harness import bearer, platform_settings_for, token_for, until

from plantwire.broker import MosquittoProcess, free_port, wait_for_port
from plantwire_gateway.settings import DeviceConfig
from plantwire_platform.service import RunningPlatform, platform_running

pytestmark = pytest.mark.integration
PASSWORD = "s3cret-Pw!"


@contextlib.asynccontextmanager
async def platform(
    broker: MosquittoProcess, tmp_path: Path, name: str
) -> AsyncIterator[tuple[RunningPlatform, aiohttp.ClientSession]]:
    settings = platform_settings_for(broker, tmp_path / "platform", f"p-{name}")
    token = token_for(settings)
    async with (
        platform_running(settings) as running,
        aiohttp.ClientSession(running.url, headers=bearer(token)) as http,
    ):
        await running.ingest.wait_subscribed()
        yield running, http


async def get(http: aiohttp.ClientSession, path: str, **params: str) -> Any:
    async with http.get(path, params=params) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_every_type_is_stored_and_queried_as_the_wire_says(
    node_data_server: NodeServer, mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    dev = f"{unique_id}-m"
    device = DeviceConfig(
        id=dev, endpoint=node_data_server.endpoint, root=DATA_ROOT, publishing_interval_ms=100
    )
    settings = gateway_settings(unique_id, mosquitto, tmp_path / "gw", [device])
    async with asyncio.timeout(90), platform(mosquitto, tmp_path, unique_id) as (_, http):
        async with gateway_running(settings):

            async def latest() -> dict[str, Any]:
                async with http.get("/api/latest", params={"device": dev}) as r:
                    if r.status == 404:  # not registered yet
                        return {}
                    assert r.status == 200, await r.text()
                    return {v["tag"]: v["value"] for v in (await r.json())["values"]}

            async def counters_flowing() -> bool:
                if not {"Vector", "Counter", "Position", "State", "Label"} <= set(await latest()):
                    return False
                counter = await get(http, "/api/series", device=dev, tag="Counter", start="-5m")
                return len(counter["points"]) >= 5

            await until(counters_flowing)
        values = await latest()
        assert values["Vector"] == [57.0, 114.0, -57.0]
        assert values["Counts"] == [1, 2, 3, 4]
        assert values["Position"] == {"Low": 1.5, "High": 3.25}
        assert base64.b64decode(values["Blob"]) == b"\x01\x02\xfe\xff"
        assert values["Label"] == "Fräse läuft"
        assert values["Id"] == "72962b91-fa75-4ae6-8d28-b404dc7daf63"
        assert values["State"] == 1
        assert values["Big"] == -(2**53) - 1  # exact in the JSON the API answers
        assert int(values["Counter"]) > 2**63

        tags = {t["tag"]: t for t in (await get(http, f"/api/devices/{dev}/tags"))["tags"]}
        assert (tags["Vector"]["value_rank"], tags["Vector"]["dims"]) == (1, [3])
        assert tags["Counts"]["dims"] == [0]
        assert (tags["Big"]["value_rank"], tags["Big"]["dims"]) == (-1, None)
        assert tags["State"]["enum"] == {"0": "Idle", "1": "Running", "2": "Fault"}
        assert tags["Label"]["locale"] == "de-DE"

        # The counter's raw points, then its min/max over the same (past) window: exact integers.
        window = {"start": "-10m", "end": "now"}
        raw = await get(http, "/api/series", device=dev, tag="Counter", **window, limit="10000")
        end = raw["end"]
        raw_values = [int(p["value"]) for p in raw["points"]]
        assert raw_values == list(range(raw_values[0], raw_values[0] + len(raw_values)))  # every +1 kept
        fixed = {"start": raw["start"], "end": end, "every": "1d"}
        maxima = await get(http, "/api/series", device=dev, tag="Counter", agg="max", **fixed)
        minima = await get(http, "/api/series", device=dev, tag="Counter", agg="min", **fixed)
        assert max(int(b["value"]) for b in maxima["buckets"]) == max(raw_values)
        assert min(int(b["value"]) for b in minima["buckets"]) == min(raw_values)
        avg = await get(http, "/api/series", device=dev, tag="Vector", agg="avg", **fixed)
        assert [b["value"] for b in avg["buckets"]] == [[57.0, 114.0, -57.0]] * len(avg["buckets"])


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "device.password"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture
async def secure_server(tmp_path: Path, password_file: Path) -> AsyncIterator[SecureServer]:
    args = [
        "--pki",
        str(tmp_path / "server-pki"),
        "--user",
        "operator",
        "--password-file",
        str(password_file),
    ]
    async with node_server("secure_server.js", free_port(), *args) as server:
        yield server


async def test_attach_through_the_platform_says_what_is_wrong(
    node_data_server: NodeServer,
    secure_server: SecureServer,
    password_file: Path,
    mosquitto: MosquittoProcess,
    tmp_path: Path,
    unique_id: str,
) -> None:
    settings = gateway_settings(unique_id, mosquitto, tmp_path / "gw", [])
    async with asyncio.timeout(120), platform(mosquitto, tmp_path, unique_id) as (_, http):
        async with gateway_running(settings):

            async def gateway_online() -> bool:
                gws = (await get(http, "/api/gateways"))["gateways"]
                return any(g["id"] == unique_id and g["state"] == "online" for g in gws)

            await until(gateway_online)

            async def attach(**body: Any) -> tuple[int, dict[str, Any]]:
                async with http.post(f"/api/gateways/{unique_id}/devices", json=body) as r:
                    return r.status, await r.json()

            # Operation limits of 20: the probe and the 51 monitored items go in batches.
            status, body = await attach(endpoint=node_data_server.endpoint, root=DATA_ROOT, id="limits")
            assert status == 201, body
            assert body["tags"] > 40

            secure = {"endpoint": secure_server.endpoint, "root": "ns=1;s=m1", "id": "plc"}
            status, body = await attach(**secure)
            assert (status, body["error"]["code"]) == (502, "security_rejected"), body
            status, body = await attach(**secure, security_policy="Basic256Sha256")
            assert (status, body["error"]["code"]) == (502, "identity_rejected"), body
            login = {
                "security_policy": "Basic256Sha256",
                "username": "operator",
                "password_file": str(password_file),
            }
            status, body = await attach(**secure, **login)
            assert (status, body["error"]["code"]) == (502, "certificate_untrusted"), body
            assert "pki trust" in body["error"]["message"]
            status, body = await attach(**secure, **login, trust_server_certificate="first-use")
            assert status == 201, body
            assert body["tags"] == 2

            async with http.get("/api/audit", params={"device": "plc"}) as r:
                audit = (await r.json())["entries"]
            assert [e["http_status"] for e in reversed(audit)] == [502, 502, 502, 201]
            assert PASSWORD not in str(audit)

        document = await get(http, "/api/openapi.json")
        attach_502 = document["paths"]["/api/gateways/{gateway}/devices"]["post"]["responses"]["502"]
        for code in (
            "security_rejected",
            "certificate_untrusted",
            "identity_rejected",
            "too_many_operations",
        ):
            assert f"`{code}`" in attach_502["description"]
        props = document["components"]["schemas"]["AttachBody"]["properties"]
        assert {
            "security_policy",
            "security_mode",
            "username",
            "password_file",
            "trust_server_certificate",
        } <= set(props)


def start_gateway(work: Path, config: Path, broker: MosquittoProcess) -> subprocess.Popen[bytes]:
    health = free_port()
    argv = [sys.executable, "-m", "plantwire", "--log-format", "json", "gateway",
            "--config", str(config), "--mqtt-port", str(broker.port), "--data-dir", str(work / "gw"),
            "--health-port", str(health)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=(work / "gateway.log").open("ab"))
    wait_for_port("127.0.0.1", health, timeout=90)
    return proc


async def test_devices_read_offline_while_their_gateway_is_dead(
    node_data_server: NodeServer, mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    dev = f"{unique_id}-k"
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'id = "{unique_id}"\n[mqtt]\nkeepalive = 5\n[[devices]]\nid = "{dev}"\n'
        f'endpoint = "{node_data_server.endpoint}"\nroot = "{DATA_ROOT}"\ninclude = ["Counter"]\n'
    )
    gateway = None
    try:
        async with asyncio.timeout(150), platform(mosquitto, tmp_path, unique_id) as (_, http):

            async def device() -> dict[str, Any]:
                return await get(http, f"/api/devices/{dev}") if await known() else {}

            async def known() -> bool:
                return dev in {d["id"] for d in (await get(http, "/api/devices"))["devices"]}

            async def shows(state: str, gateway_state: str) -> bool:
                d = await device()
                return d.get("state") == state and d.get("gateway_state") == gateway_state

            gateway = await asyncio.to_thread(start_gateway, tmp_path, config, mosquitto)
            await until(lambda: shows("online", "online"))

            gateway.send_signal(signal.SIGKILL)  # no goodbye: only the broker's last will says it
            await asyncio.to_thread(gateway.wait)
            await until(lambda: shows("offline", "offline"))
            d = await device()
            assert (d["error"], d["reported_state"]) == ("gateway_offline", "online")
            listed = {x["id"]: x for x in (await get(http, "/api/devices"))["devices"]}
            assert listed[dev]["state"] == "offline"
            gws = {g["id"]: g for g in (await get(http, "/api/gateways"))["gateways"]}
            assert [x["state"] for x in gws[unique_id]["devices"]] == ["offline"]
            assert d["state_since"] == gws[unique_id]["since"]  # offline since its gateway went

            gateway = await asyncio.to_thread(start_gateway, tmp_path, config, mosquitto)
            await until(lambda: shows("online", "online"))
            assert (await device())["error"] is None
    finally:
        if gateway is not None and gateway.poll() is None:
            gateway.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(gateway.wait, 15)
            except subprocess.TimeoutExpired:
                gateway.kill()
