"""Attach and detach at runtime: a running gateway gains a machine, keeps it across a restart, drops it.

Bad attaches (not opc.tcp, duplicate id, unreachable endpoint, missing root) are refused with a
clear error, leave nothing behind, and never disturb the machine the gateway already serves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cmdtest_plant import running_plant
from plant_harness import until

from plantwire.broker import MosquittoProcess, free_port
from plantwire_gateway.device_registry import DEVICES_FILE

pytestmark = pytest.mark.integration


async def test_attach_stream_reset_restart_detach_and_bad_attaches(
    mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    cnc, pump = f"{unique_id}-cnc", f"{unique_id}-pump"
    async with (
        asyncio.timeout(120),
        running_plant(mosquitto, tmp_path, unique_id, {cnc: "cnc", pump: "pump"}) as plant,
    ):
        machine = plant.machines[pump]
        await plant.start_gateway([plant.machines[cnc]])  # the pump is not configured

        async def gateway_online() -> bool:
            _, body = await plant.request("GET", "/api/gateways")
            return any(g["id"] == unique_id and g["state"] == "online" for g in body["gateways"])

        await until(gateway_online)
        attach = f"/api/gateways/{unique_id}/devices"

        # Bad attaches: clear errors, nothing kept.
        bad = [
            ({"endpoint": "http://127.0.0.1:80", "id": "x1"}, 400, "bad_endpoint"),
            (
                {"endpoint": f"opc.tcp://127.0.0.1:{free_port()}", "id": f"{unique_id}-gone"},
                502,
                "device_unreachable",
            ),
            (
                {"endpoint": machine.endpoint, "id": f"{unique_id}-bad", "root": "ns=2;s=nothing"},
                404,
                "unknown_node",
            ),
            ({"endpoint": machine.endpoint, "id": cnc}, 409, "duplicate_device"),
        ]
        for payload, status, code_name in bad:
            code, body = await plant.request("POST", attach, json=payload)
            assert (code, body["error"]["code"]) == (status, code_name), (payload, body)
            assert body["error"]["message"]
        code, body = await plant.request(
            "POST", "/api/gateways/no-such-gw/devices", json={"endpoint": machine.endpoint}
        )
        assert (code, body["error"]["code"]) == (404, "unknown_gateway")
        assert (
            not (plant.gw_dir / DEVICES_FILE).exists()
            or pump not in (plant.gw_dir / DEVICES_FILE).read_text()
        )

        # Attach the pump: it streams within seconds, without a restart.
        code, body = await plant.request(
            "POST", attach, json={"endpoint": machine.endpoint, "id": pump, "root": machine.root_node_id}
        )
        assert code == 201, body
        assert body["tags"] == len(machine.tags) and body["device"] == pump

        async def pump_streams() -> bool:
            return "Condition/BearingWear" in await plant.latest(pump)

        await until(pump_streams)
        code, body = await plant.request("POST", attach, json={"endpoint": machine.endpoint, "id": pump})
        assert (code, body["error"]["code"]) == (409, "duplicate_device")

        # The cnc kept streaming through all of it.
        state, _ = await plant.device_state(cnc)
        assert state == "online"

        # Pump Reset clears the bearing wear, as the pump's own data shows.
        assert (await plant.latest(pump))["Condition/BearingWear"] > 1.0
        code, body = await plant.request("POST", f"/api/devices/{pump}/call", json={"method": "Reset"})
        assert code == 200, body

        async def wear_cleared() -> bool:
            return (await plant.latest(pump)).get("Condition/BearingWear", 100.0) < 0.5

        await until(wear_cleared)

        # A restarted gateway brings the attached pump back by itself.
        await plant.stop_gateway()

        async def pump_offline() -> bool:
            _, body = await plant.request("GET", "/api/gateways")
            return any(g["id"] == unique_id and g["state"] == "offline" for g in body["gateways"])

        await until(pump_offline)
        gateway = await plant.start_gateway([plant.machines[cnc]])
        await until(gateway_online)
        assert gateway.registry is not None
        assert pump in gateway.registry.attached
        seq_before = (await plant.request("GET", f"/api/devices/{pump}"))[1]["last_seq"]

        async def pump_streams_again() -> bool:
            _, body = await plant.request("GET", f"/api/devices/{pump}")
            return body["state"] == "online" and body["last_seq"] > seq_before

        await until(pump_streams_again)

        # Detach: the session stops, the platform shows it detached, a configured device cannot be.
        code, body = await plant.request("DELETE", f"{attach}/{cnc}")
        assert (code, body["error"]["code"]) == (409, "device_configured")
        bob = {**await plant.new_token("bob", "admin"), "X-Plantwire-User": "mallory"}
        code, body = await plant.request("DELETE", f"{attach}/{pump}", headers=bob)
        assert code == 200 and body["detached"] is True, body

        async def shown_detached() -> bool:
            _, body = await plant.request("GET", "/api/gateways")
            gw = next(g for g in body["gateways"] if g["id"] == unique_id)
            return {d["id"]: d["state"] for d in gw["devices"]}.get(pump) == "detached"

        await until(shown_detached)
        assert gateway.registry.session(pump) is None
        code, body = await plant.request("POST", f"/api/devices/{pump}/call", json={"method": "Reset"})
        assert (code, body["error"]["code"]) == (404, "unknown_device")
        code, body = await plant.request("DELETE", f"{attach}/{pump}")
        assert (code, body["error"]["code"]) == (404, "unknown_device")

        code, body = await plant.request("GET", "/api/audit", params={"device": pump})
        actions = [(e["action"], e["outcome"], e["user"]) for e in body["entries"]]
        assert actions[:3] == [
            ("detach", "failed", "test-admin"),
            ("call", "rejected", "test-admin"),
            ("detach", "ok", "bob"),
        ]
        assert ("attach", "ok", "test-admin") in actions and ("attach", "rejected", "test-admin") in actions
        code, body = await plant.request("GET", "/api/audit", params={"device": f"{unique_id}-gone"})
        (entry,) = body["entries"]
        assert (entry["outcome"], entry["http_status"]) == ("failed", 502)
        assert "cannot connect" in entry["message"]
