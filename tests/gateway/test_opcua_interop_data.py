"""The gateway against a node-opcua server nobody here wrote the client side for (issue 12, data).

tests/opcua_interop/data_server.js sets every operation limit to 20, addresses its machine as
`nsu=urn:plantwire:test:data;s=Machine`, and offers arrays, ByteString, LocalizedText, DateTime,
Guid, an enumeration, Int64 beyond a double, UInt64 above 2^63, a structure, colliding browse
names, a tag whose source clock is an hour ahead, and a method with four typed arguments.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from gwtest_node_server import DATA_ROOT, NodeServer, node_server
from gwtest_support import Collector, gateway_running, gateway_settings, wait_for
from paho.mqtt.enums import CallbackAPIVersion

from plantwire import wire
from plantwire.broker import MosquittoProcess
from plantwire_gateway.settings import DeviceConfig

HOUR_US = 3600 * 1_000_000
BULK = [f"Bulk/B{i:02d}" for i in range(40)]
TYPED = ["Vector", "Counts", "Blob", "Label", "Started", "Id", "State", "Big", "Counter", "Position"]
NAMES = ["Axis~1X", "Axis/X", "Pump", "Pump~2/Flow"]


def native_samples(collector: Collector, device: str) -> list[wire.Sample]:
    """Samples as the wire carries them (arrays and structures as lists and dicts)."""
    return [s for p in collector.of(device, "data") for s in wire.decode_data(p, compound="native").samples]


def latest(collector: Collector, device: str) -> dict[str, wire.Sample]:
    return {s.tag: s for s in native_samples(collector, device)}


def device(node: NodeServer, device_id: str, **kw: Any) -> DeviceConfig:
    return DeviceConfig(
        id=device_id, endpoint=node.endpoint, root=DATA_ROOT, publishing_interval_ms=100, **kw
    )


async def test_every_type_arrives_in_its_json_shape_with_limits_of_20(
    node_data_server: NodeServer,
    mosquitto: MosquittoProcess,
    collector: Collector,
    tmp_path: Path,
    unique_id: str,
) -> None:
    dev = f"{unique_id}-m"
    settings = gateway_settings(unique_id, mosquitto, tmp_path, [device(node_data_server, dev)])
    async with asyncio.timeout(60), gateway_running(settings):
        wanted = {*TYPED, *NAMES, *BULK, "Ahead"}
        await wait_for(lambda: wanted <= set(latest(collector, dev)), 30, "a value of every tag")
        values = latest(collector, dev)
        (meta,) = collector.metas(dev)[-1:]
        info = {t.tag: t for t in meta.tags}

        # 51 monitored items were created in batches of 20: every tag streams.
        assert set(BULK) <= set(info) and values["Bulk/B39"].value == 39.0
        assert meta.root == "ns=2;s=Machine"  # the nsu= root, resolved through the NamespaceArray

        assert values["Vector"].value == [57.0, 114.0, -57.0]
        assert info["Vector"].data_type == "Double" and info["Vector"].dims == (3,)
        assert values["Counts"].value == [1, 2, 3, 4] and info["Counts"].dims == (0,)
        assert base64.b64decode(values["Blob"].value) == b"\x01\x02\xfe\xff"  # type: ignore[arg-type]
        assert values["Label"].value == "Fräse läuft" and info["Label"].locale == "de-DE"
        started = datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
        assert values["Started"].value == int(started.timestamp()) * 1_000_000 + 123_000
        assert values["Id"].value == str(uuid.UUID("72962B91-FA75-4AE6-8D28-B404DC7DAF63"))
        assert values["State"].value == 1
        assert info["State"].enum == {0: "Idle", 1: "Running", 2: "Fault"}
        assert info["State"].data_type == "MachineState"
        assert values["Big"].value == -(2**53) - 1  # exact: a double would make it -(2**53)
        assert values["Position"].value == {"Low": 1.5, "High": 3.25}
        assert info["Position"].data_type == "Range"

        # UInt64 above 2^63-1 as its decimal string; the counter's increments of 1 all survive.
        counts = [int(s.value) for s in native_samples(collector, dev) if s.tag == "Counter"]  # type: ignore[arg-type]
        assert all(c > 2**63 for c in counts)
        await wait_for(
            lambda: len({int(s.value) for s in native_samples(collector, dev) if s.tag == "Counter"}) >= 5,  # type: ignore[arg-type]
            10,
            "five counter values",
        )
        distinct = sorted({int(s.value) for s in native_samples(collector, dev) if s.tag == "Counter"})  # type: ignore[arg-type]
        assert distinct == list(range(distinct[0], distinct[0] + len(distinct)))

        # Names: the "/" in a browse name is escaped, the folder beside the variable "Pump" gets "~2".
        assert set(NAMES) <= set(info)
        assert info["Axis~1X"].node_id == "ns=2;s=Machine.AxisSlashX"
        assert info["Axis/X"].node_id == "ns=2;s=Machine.Axis.X"
        assert info["Pump"].node_id == "ns=2;s=Machine.Pump"
        assert (values["Axis~1X"].value, values["Axis/X"].value, values["Pump"].value) == (1.0, 2.0, 3.0)
        assert len({t.node_id for t in meta.tags}) == len(meta.tags)

        # The source clock of "Ahead" is an hour ahead: with timestamp=source it is stored there.
        ahead = values["Ahead"]
        assert abs(ahead.ts - wire.now_us() - HOUR_US) < 60_000_000
        # What the platform's decoder gives by default: arrays and structures as JSON text.
        texts = {s.tag: s.value for p in collector.of(dev, "data") for s in wire.decode_data(p).samples}
        assert texts["Vector"] == "[57.0,114.0,-57.0]"
        statuses = [wire.decode_device_status(p) for p in collector.of(dev, "status")]
        online = [s for s in statuses if s.state == "online"]
        assert online and online[-1].clock_offset_ms is not None and abs(online[-1].clock_offset_ms) < 5_000


async def test_timestamp_gateway_fixes_a_clock_ahead(
    node_data_server: NodeServer,
    mosquitto: MosquittoProcess,
    collector: Collector,
    tmp_path: Path,
    unique_id: str,
) -> None:
    # (node-opcua stamps its server timestamp with the given source timestamp, so timestamp=server
    # would not help here; the asyncua test covers it.)
    dev = f"{unique_id}-gw"
    settings = gateway_settings(
        unique_id,
        mosquitto,
        tmp_path,
        [device(node_data_server, dev, timestamp="gateway", include=["Ahead"])],
    )
    async with asyncio.timeout(60), gateway_running(settings):
        await wait_for(lambda: len(native_samples(collector, dev)) >= 3, 20, "values of Ahead")
        now = wire.now_us()
        for s in native_samples(collector, dev):
            assert now - 30_000_000 < s.ts <= now, s


async def ask(
    broker: MosquittoProcess, collector: Collector, op: str, dev: str, args: dict[str, Any]
) -> wire.CommandReply:
    """Send a command (again, same id, every second until answered: the gateway runs an id once)."""
    gateway = collector.gateway
    cmd_id = uuid.uuid4().hex
    now = wire.now_us()
    payload = wire.encode_command(wire.Command(cmd_id, op, dev, args, now, now + 60_000_000))  # type: ignore[arg-type]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"cmd-{cmd_id}")
    client.connect(broker.host, broker.port)
    client.loop_start()

    def find() -> wire.CommandReply | None:
        with collector.lock:
            payloads = [p for t, p, _ in collector.messages if t == wire.reply_topic(gateway)]
        return next((r for r in map(wire.decode_reply, payloads) if r.id == cmd_id), None)

    try:
        for _ in range(30):
            client.publish(wire.command_topic(gateway), payload, qos=1).wait_for_publish(10)
            with contextlib.suppress(AssertionError):
                reply: wire.CommandReply = await wait_for(find, 1.0, f"the reply to {cmd_id}")
                return reply
        raise AssertionError(f"no reply to {op} {cmd_id}")
    finally:
        client.disconnect()
        client.loop_stop()


async def test_attach_with_limits_of_20_and_a_method_with_arguments(
    node_data_server: NodeServer,
    mosquitto: MosquittoProcess,
    collector: Collector,
    tmp_path: Path,
    unique_id: str,
) -> None:
    dev = f"{unique_id}-att"
    settings = gateway_settings(unique_id, mosquitto, tmp_path, [])
    async with asyncio.timeout(90), gateway_running(settings):
        await wait_for(lambda: "online" in collector.gateway_states(), 20, "the gateway online")
        args = {"endpoint": node_data_server.endpoint, "root": DATA_ROOT}
        reply = await ask(mosquitto, collector, "attach", dev, args)
        assert reply.ok, reply
        assert reply.result["tags"] == len(TYPED) + len(NAMES) + len(BULK) + 1

        call = {"method": "SetRecipe", "args": ["R7", 1.5, [1.0, 2.25], str(2**63 + 41)]}
        reply = await ask(mosquitto, collector, "call", dev, call)
        assert reply.ok, reply
        assert reply.result["outputs"] == [True, "R7@1.5", 4.75, str(2**63 + 42)]

        # Refused by the gateway before anything is sent: named argument, no OPC UA status.
        refusals = [
            (["R7", "fast", [1.0], 1], "argument 2 (Feed)"),
            (["R7", 1.5, 1.0, 1], "argument 3 (Offsets): expected an array"),
            (["R7", 1.5, [1.0], -1], "argument 4 (Count)"),
            (["R7", 1.5], "takes 4 argument(s)"),
        ]
        for bad, message in refusals:
            call = {"method": "SetRecipe", "args": bad}
            reply = await ask(mosquitto, collector, "call", dev, call)
            assert (reply.ok, reply.code, reply.status) == (False, "invalid", 0), reply
            assert message in (reply.error or ""), reply


async def test_a_server_that_hides_its_limits_is_reported_as_too_many_operations(
    mosquitto: MosquittoProcess, collector: Collector, tmp_path: Path, unique_id: str
) -> None:
    settings = gateway_settings(unique_id, mosquitto, tmp_path, [])
    with node_server("data_server.js", "20", "hide-limits") as hidden:
        async with asyncio.timeout(60), gateway_running(settings):
            await wait_for(lambda: "online" in collector.gateway_states(), 20, "the gateway online")
            args = {"endpoint": hidden.endpoint, "root": DATA_ROOT}
            reply = await ask(mosquitto, collector, "attach", "hidden", args)
    assert (reply.ok, reply.code) == (False, "too_many_operations"), reply
    assert "BadTooManyOperations" in (reply.error or "")


@pytest.mark.parametrize("root", ["nsu=urn:plantwire:no-such;s=Machine"])
async def test_an_unknown_namespace_uri_is_a_clear_error(
    node_data_server: NodeServer,
    mosquitto: MosquittoProcess,
    collector: Collector,
    tmp_path: Path,
    unique_id: str,
    root: str,
) -> None:
    settings = gateway_settings(unique_id, mosquitto, tmp_path, [])
    async with asyncio.timeout(60), gateway_running(settings):
        await wait_for(lambda: "online" in collector.gateway_states(), 20, "the gateway online")
        args = {"endpoint": node_data_server.endpoint, "root": root}
        reply = await ask(mosquitto, collector, "attach", "x", args)
    assert (reply.ok, reply.code) == (False, "unknown_node"), reply
    assert "urn:plantwire:no-such" in (reply.error or "")
    assert orjson.loads(wire.encode_reply(reply))["code"] == "unknown_node"
