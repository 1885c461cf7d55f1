"""REST writes to devices behind Sparkplug B edge nodes go out as DCMD (docs/sparkplug.md), through
the running platform and a real Mosquitto to a pysparkplug edge node (code nobody here wrote); a
raw subscriber on the DCMD topics sees everything the platform sent, so a refusal is proven to
have sent nothing."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
import pytest
from plant_harness import bearer, platform_settings_for, token_for
from sparkplug_link import Link, Peer
from test_platform_host import poll

from plantwire.broker import MosquittoProcess
from plantwire.config import MqttSettings
from plantwire.mqtt_control import new_client
from plantwire.sparkplug.edge import EdgeNode, MetricSpec, Sample
from plantwire.sparkplug.payload import DataType, decode_payload
from plantwire.sparkplug.tag_types import READ_ONLY_KEY, read_only_property
from plantwire_platform.service import platform_running
from plantwire_platform.settings import PlatformSettings

pytestmark = pytest.mark.integration


class DcmdTap:
    """Every DCMD on the broker for `group`, decoded (the datatype is on the wire)."""

    def __init__(self, port: int, group: str) -> None:
        self.seen: list[tuple[str, list[tuple[str | None, int | None, DataType | None, Any]]]] = []
        self._subscribed = threading.Event()
        self.client = new_client(MqttSettings(port=port), f"tap-{uuid.uuid4().hex[:8]}", clean_session=True)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(f"spBv1.0/{group}/DCMD/#", 1)
        assert self._subscribed.wait(20)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        metrics = decode_payload(bytes(msg.payload)).metrics
        self.seen.append((msg.topic, [(m.name, m.alias, m.datatype, m.value) for m in metrics]))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def host_settings(mosquitto: MosquittoProcess, tmp_path: Path, suffix: str) -> PlatformSettings:
    settings = platform_settings_for(mosquitto, tmp_path, f"pw-{suffix}")
    host = settings.sparkplug_host.model_copy(update={"enabled": True, "host_id": suffix})
    return settings.model_copy(update={"sparkplug_host": host})


async def write(http: aiohttp.ClientSession, device: str, **body: Any) -> tuple[int, dict[str, Any]]:
    async with http.post(f"/api/devices/{device}/write", json=body) as resp:
        return resp.status, await resp.json()


async def test_rest_writes_reach_a_pysparkplug_edge_node_as_dcmd_and_refusals_send_nothing(
    mosquitto: MosquittoProcess, tmp_path: Path, start_peer: Callable[..., Peer]
) -> None:
    suffix = uuid.uuid4().hex[:8]
    group, device = f"g{suffix}", f"dev{suffix}"
    settings = host_settings(mosquitto, tmp_path, suffix)
    token = token_for(settings)
    tap = DcmdTap(mosquitto.port, group)
    edge = start_peer("dcmd_edge.py", "127.0.0.1", str(mosquitto.port), group, "edge1", device)
    edge.next("ready")
    dcmd_topic = f"spBv1.0/{group}/DCMD/edge1/{device}"
    try:
        async with asyncio.timeout(60), platform_running(settings) as platform:
            async with aiohttp.ClientSession(base_url=platform.url, headers=bearer(token)) as http:
                edge.send("connect")
                edge.next("connect")
                await poll(http, f"/api/devices/{device}", lambda b: b["state"] == "online")
                tags = await poll(http, f"/api/devices/{device}/tags", lambda b: len(b["tags"]) == 3)
                assert all(t["writable"] for t in tags["tags"])  # no readOnly property in the birth

                # By alias, applied and reported back: confirmed by the stored DDATA (200)
                status, body = await write(http, device, tag="setpoint", value=42.5)
                assert status == 200, body
                assert (body["protocol"], body["gateway"], body["confirmed"]) == (
                    "sparkplug",
                    f"{group}.edge1",
                    True,
                )
                assert (body["requested"], body["value"]) == (42.5, 42.5)
                got = await asyncio.to_thread(edge.next, "dcmd")
                assert got["topic"] == dcmd_topic
                assert got["metrics"] == [{"name": None, "alias": 11, "datatype": "DOUBLE", "value": 42.5}]

                # By name (no alias in the birth), received but never reported back: 202, not confirmed
                status, body = await write(http, device, tag="mode", value=7, timeout=0.5)
                assert (status, body["confirmed"], body["value"]) == (202, False, None)
                got = await asyncio.to_thread(edge.next, "dcmd")
                assert got["metrics"] == [{"name": "mode", "alias": None, "datatype": "INT32", "value": 7}]

                # Refused before anything is sent
                for tag, value, expected in (
                    ("nope", 1, (404, "unknown_tag")),
                    ("mode", 2**31, (422, "invalid_value")),  # Int32 range
                    ("mode", "seven", (422, "invalid_value")),
                    ("bits", [True], (422, "invalid_value")),  # an array: Plantwire cannot write it
                ):
                    status, body = await write(http, device, tag=tag, value=value)
                    assert (status, body["error"]["code"]) == expected, (tag, body)
                async with http.post(f"/api/devices/{device}/call", json={"method": "Start"}) as resp:
                    assert resp.status == 422 and (await resp.json())["error"]["code"] == "not_supported"
                async with http.get(f"/api/devices/{device}/browse") as resp:
                    assert resp.status == 422 and (await resp.json())["error"]["code"] == "not_supported"

                # The audit has every write and call, sent or refused, newest first
                async with http.get("/api/audit", params={"device": device}) as resp:
                    entries = (await resp.json())["entries"]
                assert [(e["action"], e["outcome"], e["http_status"]) for e in reversed(entries)] == [
                    ("write", "ok", 200),
                    ("write", "sent", 202),
                    ("write", "rejected", 404),
                    ("write", "rejected", 422),
                    ("write", "rejected", 422),
                    ("write", "rejected", 422),
                    ("call", "rejected", 422),
                ]
                assert entries[-1]["gateway"] == f"{group}.edge1" and entries[-1]["user"] == "test-admin"
                assert entries[-1]["command_id"] and entries[-1]["rtt_ms"] is not None
                assert entries[-3]["command_id"] is None  # refused: nothing was sent

                # The node dies (its Will): a write is refused, not sent into the void
                edge.kill()
                await poll(http, f"/api/devices/{device}", lambda b: b["gateway_state"] == "offline")
                status, body = await write(http, device, tag="setpoint", value=1.0)
                assert (status, body["error"]["code"]) == (503, "device_offline")
        await asyncio.sleep(0.2)  # a stray DCMD would have reached the tap by now
        assert [(t, m) for t, m in tap.seen] == [
            (dcmd_topic, [(None, 11, DataType.Double, 42.5)]),
            (dcmd_topic, [("mode", None, DataType.Int32, 7)]),
        ]
    finally:
        tap.close()


async def test_a_read_only_metric_and_a_device_without_a_birth_this_session_are_refused(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    """Our own EdgeNode (pysparkplug cannot send properties) marks a metric readOnly."""
    suffix = uuid.uuid4().hex[:8]
    group, device = f"g{suffix}", f"ro{suffix}"
    settings = host_settings(mosquitto, tmp_path, suffix)
    token = token_for(settings)
    tap = DcmdTap(mosquitto.port, group)
    node = EdgeNode(group, "edge2")
    specs = [
        MetricSpec("limit", DataType.Float, {READ_ONLY_KEY: read_only_property()}),
        MetricSpec("target", DataType.Float),
    ]
    node.add_device(device, specs, [Sample("limit", 5.0, 1), Sample("target", 1.0, 1)])
    commands: list[tuple[str, bytes]] = []

    def on_command(topic: str, payload: bytes) -> list[Any]:
        commands.append((topic, payload))
        return []

    link = Link(mosquitto.port, f"edge2-{suffix}", on_command, node.will())
    link.start(node.subscriptions())
    try:
        async with asyncio.timeout(60), platform_running(settings) as platform:
            async with aiohttp.ClientSession(base_url=platform.url, headers=bearer(token)) as http:
                assert platform.sparkplug is not None
                await asyncio.to_thread(platform.sparkplug.subscribed.wait, 20)
                await asyncio.to_thread(link.publish, node.on_connected())
                tags = await poll(http, f"/api/devices/{device}/tags", lambda b: len(b["tags"]) == 2)
                assert {t["tag"]: t["writable"] for t in tags["tags"]} == {"limit": False, "target": True}
                status, body = await write(http, device, tag="limit", value=1.0)
                assert (status, body["error"]["code"]) == (403, "tag_not_writable")
                status, body = await write(http, device, tag="target", value=0.1, timeout=0.3)
                assert (status, body["confirmed"]) == (202, False)  # our test node applies nothing
        # A new platform process (clean session) has seen no birth yet: refused, a rebirth asked
        settings = host_settings(mosquitto, tmp_path, f"{suffix}b")
        async with asyncio.timeout(60), platform_running(settings) as platform:
            async with aiohttp.ClientSession(base_url=platform.url, headers=bearer(token)) as http:
                assert platform.sparkplug is not None
                await asyncio.to_thread(platform.sparkplug.subscribed.wait, 20)
                status, body = await write(http, device, tag="target", value=2.0)
                assert (status, body["error"]["code"]) == (503, "birth_missing"), body
        await asyncio.sleep(0.2)
        dcmds = [t for t, _ in commands if "/DCMD/" in t]
        ncmds = [t for t, _ in commands if "/NCMD/" in t]
        assert dcmds == [f"spBv1.0/{group}/DCMD/edge2/{device}"]  # only the `target` write
        assert ncmds == [f"spBv1.0/{group}/NCMD/edge2"]  # the rebirth request
        ((_, [(name, alias, datatype, value)]),) = tap.seen
        assert (name, datatype, value) == (None, DataType.Float, pytest.approx(0.1))
        assert isinstance(alias, int)
    finally:
        link.stop()
        tap.close()
