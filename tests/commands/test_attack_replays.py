"""Issue 11's attacks replayed against a running platform (real machine, gateway, broker, store):
each is refused, changes nothing on the machine, and is counted in /metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from cmdtest_plant import Plant, running_plant
from plant_harness import until

from plantwire import wire
from plantwire.broker import MosquittoProcess
from plantwire.config import MqttSettings
from plantwire.mqtt_control import new_client
from plantwire.timeunits import from_iso as iso_to_us

pytestmark = pytest.mark.integration

SETPOINT = "Spindle/SpeedSetpoint"
WRITE = {"tag": SETPOINT, "value": 1234.0}


@pytest.fixture(scope="module")
def mosquitto(module_mosquitto: MosquittoProcess) -> MosquittoProcess:
    return module_mosquitto  # not the session's: see module_mosquitto


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


class Forger:
    """Someone with a broker connection publishing in the documented wire format (QoS 1)."""

    def __init__(self, broker: MosquittoProcess, client_id: str) -> None:
        self.client = new_client(MqttSettings(port=broker.port), client_id, clean_session=True)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        await asyncio.to_thread(info.wait_for_publish, 5)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def gauge(metrics: str, name: str) -> float:
    (line,) = [line for line in metrics.splitlines() if line.startswith(f"plantwire_platform_{name} ")]
    return float(line.split()[-1])


async def test_forged_ownership_far_future_and_replayed_values_oversized_audit_and_public_attach(
    mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    cnc, evil = f"{unique_id}-cnc", f"{unique_id}-evil"
    forger = Forger(mosquitto, f"{unique_id}-forger")
    async with asyncio.timeout(90), running_plant(mosquitto, tmp_path, unique_id, {cnc: "cnc"}) as plant:
        try:
            await plant.start_gateway(list(plant.machines.values()))

            async def streaming() -> bool:
                return SETPOINT in await plant.latest(cnc)

            await until(streaming)
            _, device = await plant.request("GET", f"/api/devices/{cnc}")
            endpoint = device["endpoint"]

            # 1. A forged gateway publishes retained meta and status for cnc under its own id.
            tag = wire.TagInfo(SETPOINT, "ns=2;s=x", "Double", writable=True)
            fake_meta = wire.DeviceMeta(endpoint="opc.tcp://evil:4840", root="ns=2;s=x", tags=[tag])
            await forger.publish(
                wire.device_topic(evil, cnc, "meta"), wire.encode_meta(fake_meta), retain=True
            )
            status = wire.DeviceStatus(state="online", since=wire.now_us(), endpoint="opc.tcp://evil:4840")
            await forger.publish(wire.device_topic(evil, cnc, "status"), wire.encode_device_status(status))

            async def refused() -> bool:
                async with plant.http.get("/metrics") as resp:
                    text = await resp.text()
                return 'ownership_rejected_total{kind="status"} 1' in text

            await until(refused)
            _, device = await plant.request("GET", f"/api/devices/{cnc}")
            assert (device["gateway"], device["endpoint"]) == (unique_id, endpoint)
            # ... so a REST write still reaches the real machine through its own gateway.
            code, body = await plant.request("POST", f"/api/devices/{cnc}/write", json=WRITE)
            assert (code, body["gateway"], body["value"]) == (200, unique_id, WRITE["value"])
            # Only an admin moves a device, and the move is audited.
            reader = await plant.new_token("viewer", "read")
            move = f"/api/devices/{cnc}/move"
            assert await raw(plant, "POST", move, json={"gateway": evil}, headers=reader) == 403
            code, body = await plant.request("POST", move, json={"gateway": unique_id})
            assert (code, body) == (200, {"device": cnc, "gateway": unique_id, "previous": unique_id})
            code, body = await plant.request("POST", f"/api/devices/{cnc}-none/move", json={"gateway": evil})
            assert (code, body["error"]["code"]) == (404, "unknown_device")
            code, body = await plant.request("POST", move, json={"gateway": "not a gateway id"})
            assert code == 422, body

            # 2. Values stamped in year 9999, and seq 2^63-1, under the real gateway's id.
            far = 253_402_300_799_000_000
            batch = wire.DataBatch(2**63 - 1, wire.now_us(), [wire.Sample(SETPOINT, far, 9999.0)])
            await forger.publish(wire.device_topic(unique_id, cnc, "data"), wire.encode_data(batch))
            # 3. A replayed value: an old timestamp the store has, a different value, an old seq.
            code, series = await plant.request(
                "GET", "/api/series", params={"device": cnc, "tag": SETPOINT, "start": "-1h"}
            )
            first = series["points"][0]
            replay = wire.DataBatch(1, wire.now_us(), [wire.Sample(SETPOINT, iso_to_us(first["ts"]), -1.0)])
            await forger.publish(wire.device_topic(unique_id, cnc, "data"), wire.encode_data(replay))

            async def counted() -> bool:
                async with plant.http.get("/metrics") as resp:
                    text = await resp.text()
                return (
                    'values_rejected_total{reason="future"} 1' in text and gauge(text, "seq_jumps_total") == 1
                )

            await until(counted)
            latest = await plant.latest(cnc)
            assert latest[SETPOINT] != 9999.0
            code, series = await plant.request(
                "GET", "/api/series", params={"device": cnc, "tag": SETPOINT, "start": "-1h"}
            )
            assert series["points"][0] == first  # the replay changed nothing
            async with plant.http.get("/metrics") as resp:
                metrics = await resp.text()
            assert gauge(metrics, "seq_gaps_total") == 0  # gap counting survived seq 2^63-1

            # 4. A 900 KB write: refused, and its audit row stays small.
            code, body = await plant.request(
                "POST", f"/api/devices/{cnc}/write", json={"tag": SETPOINT, "value": "A" * 900_000}
            )
            assert (code, body["error"]["code"]) == (422, "invalid_value")
            assert len(body["error"]["message"]) < 1000
            # 5. Attach aimed at a public address (the gateway would dial it): 403, nothing sent.
            code, body = await plant.request(
                "POST", f"/api/gateways/{unique_id}/devices", json={"endpoint": "opc.tcp://8.8.8.8:4840"}
            )
            assert (code, body["error"]["code"]) == (403, "endpoint_not_allowed")
            async with plant.http.get("/api/audit") as resp:
                text = await resp.text()
            entries = orjson.loads(text)["entries"]
            assert len(text) < 20_000
            oversized = next(e for e in entries if e["action"] == "write" and e["outcome"] == "rejected")
            assert "…[truncated: 900000 bytes" in oversized["request"]["value"]
            assert [(e["action"], e["outcome"], e["http_status"]) for e in entries[:2]] == [
                ("attach", "rejected", 403),
                ("write", "rejected", 422),
            ]
            assert any(e["action"] == "move" and e["outcome"] == "ok" for e in entries)
        finally:
            await forger.publish(wire.device_topic(evil, cnc, "meta"), b"", retain=True)
            forger.close()
