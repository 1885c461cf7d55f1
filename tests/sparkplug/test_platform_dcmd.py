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

from plantwire import wire
from plantwire.broker import MosquittoProcess
from plantwire.config import MqttSettings
from plantwire.mqtt_control import new_client
from plantwire.sparkplug.edge import EdgeNode, MetricSpec, Sample
from plantwire.sparkplug.payload import DataType, decode_payload
from plantwire.sparkplug.tag_types import READ_ONLY_KEY, read_only_property
from plantwire_platform.service import platform_running
from plantwire_platform.settings import PlatformSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mosquitto(module_mosquitto: MosquittoProcess) -> MosquittoProcess:
    return module_mosquitto  # not the session's: see module_mosquitto


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
                # The edge node's devices follow its births: attach and detach are refused, not sent
                gateway = f"{group}.edge2"
                attach = {"endpoint": "opc.tcp://127.0.0.1:4840", "id": f"new{suffix}"}
                async with http.post(f"/api/gateways/{gateway}/devices", json=attach) as resp:
                    assert (resp.status, (await resp.json())["error"]["code"]) == (422, "not_supported")
                async with http.delete(f"/api/gateways/{gateway}/devices/{device}") as resp:
                    assert (resp.status, (await resp.json())["error"]["code"]) == (422, "not_supported")
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


async def until(condition: Callable[[], bool]) -> None:
    """Poll until true; the test's timeout bounds it."""
    while not condition():
        await asyncio.sleep(0.05)


def json_publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    """A plantwire/v1 gateway stand-in: publish at QoS 1, wait for each PUBACK."""
    client = new_client(MqttSettings(port=port), f"jsongw-{uuid.uuid4().hex[:8]}", clean_session=True)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in messages:
            info = client.publish(topic, payload, qos=1)
            info.wait_for_publish(20)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def json_meta(endpoint: str) -> bytes:
    tag = wire.TagInfo("target", "ns=2;s=target", "Double", writable=True)
    return wire.encode_meta(wire.DeviceMeta(endpoint=endpoint, root="ns=2;s=Root", tags=[tag]))


async def test_an_edge_node_cannot_take_a_plantwire_gateways_device_nor_the_other_way_round(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    group, json_gw = f"g{suffix}", f"gw{suffix}"
    shared, spb_dev = f"cnc{suffix}", f"spb{suffix}"
    settings = host_settings(mosquitto, tmp_path, suffix)
    token = token_for(settings)
    tap = DcmdTap(mosquitto.port, group)
    node = EdgeNode(group, "edge3")
    specs = [MetricSpec("target", DataType.Double)]
    for dev in (shared, spb_dev):
        node.add_device(dev, specs, [Sample("target", 66.0, 1)])
    link = Link(mosquitto.port, f"edge3-{suffix}", lambda t, p: [], node.will())
    link.start(node.subscriptions())
    now = wire.now_us()
    try:
        async with asyncio.timeout(60), platform_running(settings) as platform:
            spb = platform.sparkplug
            assert spb is not None
            async with aiohttp.ClientSession(base_url=platform.url, headers=bearer(token)) as http:
                await asyncio.to_thread(spb.subscribed.wait, 20)
                batch = wire.DataBatch(seq=1, sent=now, samples=[wire.Sample("target", now, 1.0)])
                await asyncio.to_thread(
                    json_publish,
                    mosquitto.port,
                    [
                        (wire.device_topic(json_gw, shared, "meta"), json_meta("opc.tcp://real:4840")),
                        (wire.device_topic(json_gw, shared, "data"), wire.encode_data(batch)),
                    ],
                )
                await poll(http, "/api/latest", lambda b: len(b["values"]) == 1, device=shared)
                # The edge node births both devices: the one a Plantwire gateway owns is refused
                await asyncio.to_thread(link.publish, node.on_connected())
                await poll(http, f"/api/devices/{spb_dev}", lambda b: b["state"] == "online")
                await until(lambda: spb.stats.ownership_rejected["status"] == 1)
                assert spb.stats.ownership_rejected == {"data": 1, "meta": 1, "status": 1}
                dev = platform.store.get_device(shared)
                assert dev is not None and (dev.gateway, dev.endpoint) == (json_gw, "opc.tcp://real:4840")
                latest = await poll(http, "/api/latest", lambda b: True, device=shared)
                assert [v["value"] for v in latest["values"]] == [1.0]  # not the edge node's 66.0
                # ... so its writes still go to the Plantwire gateway (absent here: no reply), no DCMD
                status, body = await write(http, shared, tag="target", value=2.0, timeout=0.3)
                assert (status, body["error"]["code"]) == (504, "command_timeout")

                # A Plantwire gateway id cannot take the edge node's device either
                await asyncio.to_thread(
                    json_publish,
                    mosquitto.port,
                    [(wire.device_topic(json_gw, spb_dev, "meta"), json_meta("opc.tcp://evil:4840"))],
                )
                await poll(
                    http, "/api/health", lambda b: platform.ingest.stats().ownership_rejected["meta"] == 1
                )
                dev = platform.store.get_device(spb_dev)
                assert dev is not None and (dev.gateway, dev.endpoint) == (
                    f"{group}.edge3",
                    f"sparkplug://{group}/edge3/{spb_dev}",
                )
                status, body = await write(http, spb_dev, tag="target", value=3.0, timeout=0.3)
                assert (status, body["protocol"]) == (202, "sparkplug")
        await asyncio.sleep(0.2)
        assert [t for t, _ in tap.seen] == [f"spBv1.0/{group}/DCMD/edge3/{spb_dev}"]
    finally:
        link.stop()
        tap.close()
