"""The gateway against a real OPC UA server and a real Mosquitto: meta, data, status, reconnects."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gwtest_machine import TAGS, MachineServer
from gwtest_support import Collector, collecting, gateway_running, gateway_settings, wait_for

from plantwire.broker import MosquittoProcess, free_port
from plantwire_gateway.settings import DeviceConfig

pytestmark = pytest.mark.integration


def device(machine: MachineServer, **kw: object) -> DeviceConfig:
    return DeviceConfig(id="m1", endpoint=machine.endpoint, root="ns=2;s=m1", publishing_interval_ms=50, **kw)


async def test_meta_describes_tags_and_statuses_go_online_then_offline(
    machine: MachineServer, collector: Collector, mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    settings = gateway_settings(unique_id, mosquitto, tmp_path, [device(machine)])
    async with asyncio.timeout(30):
        async with gateway_running(settings):
            metas = await wait_for(lambda: collector.metas("m1"), what="meta")
            await wait_for(lambda: "online" in collector.device_states("m1"), what="device online")
            assert collector.gateway_states()[:1] == ["online"]
        await wait_for(lambda: collector.gateway_states()[-1:] == ["offline"], what="graceful offline")

    assert collector.device_states("m1")[:2] == ["connecting", "online"]
    tags = {t.tag: t for t in metas[-1].tags}
    assert set(tags) == set(TAGS)  # the Reset method and the unit/range properties are not tags
    assert metas[-1].root == "ns=2;s=m1"
    speed = tags["Spindle/Speed"]
    assert (speed.data_type, speed.unit, speed.low, speed.high) == ("Double", "rpm", 0.0, 24000.0)
    assert speed.description == "spindle speed"
    assert speed.node_id == "ns=2;s=m1.Spindle/Speed"
    assert tags["Axis/X/Position"].unit == "mm"
    assert tags["Status/Running"].data_type == "Boolean"
    assert tags["Status/Program"].data_type == "String"
    assert (tags["Status/PartCount"].data_type, tags["Status/PartCount"].unit) == ("UInt32", None)
    assert [t for t, info in tags.items() if info.writable] == ["Setpoint"]


async def test_written_values_arrive_with_source_timestamps_and_consecutive_seq(
    machine: MachineServer, collector: Collector, mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    settings = gateway_settings(unique_id, mosquitto, tmp_path, [device(machine)])
    base = datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    expected: dict[tuple[str, int], object] = {}
    async with asyncio.timeout(30), gateway_running(settings) as gateway:
        await wait_for(lambda: "online" in collector.device_states("m1"), what="device online")
        for i in range(300):
            ts = await machine.write("Spindle/Speed", 1000.0 + i, base + timedelta(milliseconds=i))
            expected[("Spindle/Speed", ts)] = 1000.0 + i
        # A repeated value with a new timestamp is a sample too (every_write).
        ts = await machine.write("Spindle/Speed", 1299.0, base + timedelta(seconds=1))
        expected[("Spindle/Speed", ts)] = 1299.0
        for tag, value in (("Status/Running", True), ("Status/Program", "O1234"), ("Status/PartCount", 42)):
            ts = await machine.write(tag, value, base + timedelta(seconds=2))
            expected[(tag, ts)] = value

        def arrived() -> bool:
            got = {(s.tag, s.ts) for s in collector.samples("m1")}
            return got >= expected.keys()

        await wait_for(arrived, what="all written values")
        await wait_for(lambda: gateway.stats()["outbox_rows"] == 0, what="outbox drained")
        stats = gateway.stats()

    got = {(s.tag, s.ts): s for s in collector.samples("m1")}
    for key, value in expected.items():
        assert got[key].value == value
        assert got[key].status == 0
    seqs = [b.seq for b in collector.batches("m1")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert stats["acked"] == stats["batches_appended"] == len(seqs)
    assert stats["values_in"] >= len(expected)


async def test_include_and_exclude_select_tags(
    machine: MachineServer, collector: Collector, mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    dev = device(machine, include=["Spindle/*", "Status/*"], exclude=["Status/Program"])
    settings = gateway_settings(unique_id, mosquitto, tmp_path, [dev])
    async with asyncio.timeout(30), gateway_running(settings):
        metas = await wait_for(lambda: collector.metas("m1"), what="meta")
        await wait_for(lambda: "online" in collector.device_states("m1"), what="device online")
        await machine.write("Status/Program", "excluded")
        await machine.write("Axis/X/Position", 1.5)
        marker = await machine.write("Spindle/Load", 55.0)
        await wait_for(lambda: any(s.ts == marker for s in collector.samples("m1")), what="marker value")

    names = {t.tag for t in metas[-1].tags}
    assert names == {"Spindle/Speed", "Spindle/Load", "Status/Running", "Status/PartCount"}
    assert {s.tag for s in collector.samples("m1")} <= names


async def test_device_goes_offline_and_is_resubscribed_when_the_server_returns(
    machine: MachineServer, collector: Collector, mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    dead = DeviceConfig(id="dead", endpoint=f"opc.tcp://127.0.0.1:{free_port()}")
    settings = gateway_settings(unique_id, mosquitto, tmp_path, [device(machine), dead])
    async with asyncio.timeout(60), gateway_running(settings) as gateway:
        await wait_for(lambda: "online" in collector.device_states("m1"), what="device online")
        # An unreachable device at start-up is reported, retried, and does not hold up the others.
        await wait_for(lambda: "offline" in collector.device_states("dead"), what="dead device offline")
        first = await machine.write("Spindle/Speed", 1.0)
        await wait_for(lambda: any(s.ts == first for s in collector.samples("m1")), what="first value")

        await machine.stop()
        await wait_for(lambda: collector.device_states("m1")[-1] == "offline", what="device offline")
        assert gateway.stats()["devices"]["m1"] == "offline"
        metas_before = len(collector.metas("m1"))

        await machine.start()
        await wait_for(lambda: collector.device_states("m1")[-1] == "online", within=15, what="online again")
        await wait_for(lambda: len(collector.metas("m1")) > metas_before, what="meta after re-browse")
        again = await machine.write("Spindle/Speed", 2.0)
        await wait_for(lambda: any(s.ts == again for s in collector.samples("m1")), what="new value")
        assert gateway.stats()["devices"] == {"m1": "online", "dead": "offline"}

    from plantwire import wire

    offline = [wire.decode_device_status(p) for p in collector.of("m1", "status")]
    assert any(s.state == "offline" and s.error for s in offline)
    dead_status = wire.decode_device_status(collector.of("dead", "status")[-1])
    assert dead_status.state == "offline" and "refused" in (dead_status.error or "").lower()
    seqs = [b.seq for b in collector.batches("m1")]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_broker_outage_loses_no_values(
    machine: MachineServer, own_mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    settings = gateway_settings(unique_id, own_mosquitto, tmp_path / "gw", [device(machine)])
    written: set[tuple[str, int]] = set()
    with collecting(own_mosquitto, unique_id, f"collector-{unique_id}") as collector:
        async with asyncio.timeout(60), gateway_running(settings) as gateway:
            await wait_for(lambda: "online" in collector.device_states("m1"), what="device online")
            for i in range(50):
                written.add(("Spindle/Speed", await machine.write("Spindle/Speed", float(i))))
            await wait_for(lambda: gateway.stats()["outbox_rows"] == 0, what="first values acknowledged")

            await asyncio.to_thread(own_mosquitto.stop, True)  # kill -9
            await wait_for(lambda: not gateway.stats()["mqtt_connected"], what="gateway notices the outage")
            for i in range(50, 500):
                written.add(("Spindle/Load", await machine.write("Spindle/Load", float(i))))
            await wait_for(lambda: gateway.stats()["values_in"] >= 500, what="values received during outage")
            await wait_for(lambda: gateway.stats()["outbox_rows"] > 0, what="values held in the outbox")

            # Blocking the event loop on purpose: the gateway cannot reconnect before the test's
            # subscriber has subscribed again, so the subscriber sees everything the gateway resends
            # (without relying on the broker persisting the subscriber's session across a kill).
            resubscribed = collector.subscriptions + 1
            own_mosquitto.start()
            collector.wait_subscribed(resubscribed)
            await wait_for(lambda: gateway.stats()["mqtt_connected"], within=15, what="gateway reconnects")
            await wait_for(lambda: gateway.stats()["outbox_rows"] == 0, within=15, what="outbox drained")
            await wait_for(
                lambda: {(s.tag, s.ts) for s in collector.samples("m1")} >= written,
                within=15,
                what="every written value at the subscriber",
            )
            assert gateway.stats()["mqtt_reconnects"] >= 1
            assert gateway.stats()["outbox_dropped"] == 0
    seqs = sorted({b.seq for b in collector.batches("m1")})
    assert seqs == list(range(1, seqs[-1] + 1))
