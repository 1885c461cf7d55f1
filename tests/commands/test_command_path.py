"""Commands end to end: REST -> platform -> MQTT -> gateway -> OPC UA -> simulator, effect read back.

Real simulators, a real gateway, the session Mosquitto and a real platform; the proof of every
command is the machine's own data coming back through /api/latest.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cmdtest_plant import running_plant
from plant_harness import until

from plantwire import wire
from plantwire.broker import MosquittoProcess

pytestmark = pytest.mark.integration


async def test_writes_calls_browse_validation_audit_and_timeout(
    mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    cnc = f"{unique_id}-cnc"
    async with asyncio.timeout(90), running_plant(mosquitto, tmp_path, unique_id, {cnc: "cnc"}) as plant:
        gateway = await plant.start_gateway(list(plant.machines.values()))

        async def online_with_data() -> bool:
            state, _ = await plant.device_state(cnc)
            return state == "online" and "Spindle/SpeedSetpoint" in await plant.latest(cnc)

        await until(online_with_data)
        # The audit names the token; a forged X-Plantwire-User changes nothing.
        headers = {**await plant.new_token("alice", "operate"), "X-Plantwire-User": "mallory"}

        # A setpoint write: Good, read back, and the machine's own data shows it.
        code, body = await plant.request(
            "POST",
            f"/api/devices/{cnc}/write",
            json={"tag": "Spindle/SpeedSetpoint", "value": 4321.5},
            headers=headers,
        )
        assert code == 200, body
        assert (body["status"], body["status_name"]) == (0, "Good")
        assert body["value"] == 4321.5 and body["requested"] == 4321.5
        assert body["rtt_ms"] > 0 and body["gateway"] == unique_id

        async def setpoint_seen() -> bool:
            return (await plant.latest(cnc)).get("Spindle/SpeedSetpoint") == 4321.5

        await until(setpoint_seen)

        # Stop: the machine goes IDLE and its spindle winds down, as its data says.
        code, body = await plant.request(
            "POST", f"/api/devices/{cnc}/call", json={"method": "Stop"}, headers=headers
        )
        assert code == 200, body
        assert body["status_name"] == "Good" and body["method"] == "Stop"

        async def idle() -> bool:
            return (await plant.latest(cnc)).get("Status/State") == "IDLE"

        await until(idle)

        # Validation before sending, each with a message naming the problem.
        cases = [
            ({"tag": "Spindle/SpeedSetpoint", "value": 99_999}, 422, "out_of_range", "engineering range"),
            ({"tag": "Spindle/SpeedSetpoint", "value": "fast"}, 422, "invalid_value", "Double"),
            ({"tag": "Spindle/SpeedSetpoint", "value": True}, 422, "invalid_value", "Double"),
            ({"tag": "Spindle/Speed", "value": 10}, 403, "tag_not_writable", "read-only"),
            ({"tag": "Spindle/Nope", "value": 10}, 404, "unknown_tag", "Spindle/Nope"),
            ({"tag": "Spindle/SpeedSetpoint"}, 400, "bad_request", "value"),
        ]
        for payload, status, err_code, words in cases:
            code, body = await plant.request("POST", f"/api/devices/{cnc}/write", json=payload)
            assert (code, body["error"]["code"]) == (status, err_code), (payload, body)
            assert words in body["error"]["message"], body
        code, body = await plant.request("POST", "/api/devices/no-such/write", json={"tag": "x", "value": 1})
        assert (code, body["error"]["code"]) == (404, "unknown_device")
        code, body = await plant.request("POST", f"/api/devices/{cnc}/call", json={"method": "Explode"})
        assert (code, body["error"]["code"]) == (404, "unknown_method")
        assert "Start" in body["error"]["message"]
        assert gateway.commands is not None
        executed = gateway.commands.executed

        # The same command id twice: answered twice, run once.
        cmd = {"tag": "Spindle/SpeedSetpoint", "value": 5000, "id": f"retry-{unique_id}"}
        first = await plant.request("POST", f"/api/devices/{cnc}/write", json=cmd)
        second = await plant.request("POST", f"/api/devices/{cnc}/write", json=cmd)
        assert first[0] == second[0] == 200
        assert first[1]["value"] == second[1]["value"] == 5000.0
        assert gateway.commands.executed == executed + 1

        # Browse: the root's children, then a folder's variables with type and writability.
        code, body = await plant.request("GET", f"/api/devices/{cnc}/browse")
        assert code == 200, body
        children = {c["browse_name"]: c for c in body["children"]}
        assert {"Spindle", "Axes", "Start", "Stop", "Reset"} <= set(children)
        assert children["Stop"]["node_class"] == "Method"
        code, body = await plant.request(
            "GET", f"/api/devices/{cnc}/browse", params={"node": children["Spindle"]["node_id"]}
        )
        assert code == 200, body
        spindle = {c["browse_name"]: c for c in body["children"]}
        assert spindle["SpeedSetpoint"]["writable"] is True and spindle["Speed"]["writable"] is False
        assert spindle["SpeedSetpoint"]["data_type"] == "Double"
        code, body = await plant.request(
            "GET", f"/api/devices/{cnc}/browse", params={"node": "ns=2;s=nothing"}
        )
        assert (code, body["error"]["code"]) == (404, "unknown_node")

        # Audit: who, what, result, newest first; rejected writes are there too.
        code, body = await plant.request("GET", "/api/audit", params={"device": cnc, "limit": "100"})
        assert code == 200
        entries = body["entries"]
        assert entries[-1]["user"] == "alice" and entries[-1]["action"] == "write"
        assert entries[-1]["outcome"] == "ok" and entries[-1]["request"]["value"] == 4321.5
        assert any(e["outcome"] == "rejected" and e["http_status"] == 422 for e in entries)
        assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)

        # No gateway answers: 504 with a clear message (a device whose gateway does not exist).
        ghost = f"{unique_id}-ghost"
        meta = wire.DeviceMeta(
            "opc.tcp://127.0.0.1:1",
            "i=85",
            [wire.TagInfo("Set", "ns=2;s=Set", "Double", writable=True, low=0.0, high=10.0)],
        )
        await asyncio.to_thread(plant.platform.store.apply_meta, f"{unique_id}-nogw", ghost, meta)
        code, body = await plant.request(
            "POST", f"/api/devices/{ghost}/write", json={"tag": "Set", "value": 1, "timeout": 0.5}
        )
        assert (code, body["error"]["code"]) == (504, "command_timeout")
        assert "did not answer" in body["error"]["message"]
