"""Outage markers use the gateway's clock, and every tag reads Good again after a reconnect."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gwtest_machine import MachineServer
from gwtest_support import Collector, gateway_running, gateway_settings, wait_for

from plantwire import wire
from plantwire.broker import MosquittoProcess
from plantwire_gateway.settings import DeviceConfig

BAD = wire.STATUS_BAD_NO_COMMUNICATION


async def test_markers_use_the_gateway_clock_and_never_mask_values_that_come_back(
    machine: MachineServer, collector: Collector, mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    dev = DeviceConfig(id="m1", endpoint=machine.endpoint, root="ns=2;s=m1", publishing_interval_ms=100)
    settings = gateway_settings(unique_id, mosquitto, tmp_path, [dev])
    async with asyncio.timeout(90), gateway_running(settings) as gateway:
        await wait_for(lambda: "online" in collector.device_states("m1"), what="device online")
        # One tag whose clock runs an hour ahead.
        ahead = await machine.write("Spindle/Load", 5.0, datetime.now(UTC) + timedelta(hours=1))
        await wait_for(lambda: any(s.ts == ahead for s in collector.samples("m1")), what="value from ahead")

        stopped = wire.now_us()
        await machine.stop()
        await machine.start()
        # An unchanged value comes back with its old source timestamp, older than the marker.
        old = await machine.write("Status/Program", "P-OLD", datetime.now(UTC) - timedelta(seconds=30))
        await wait_for(lambda: gateway.stats()["outage_markers"] > 0, within=30, what="outage marked")
        await wait_for(lambda: gateway.stats()["values_resent"] > 0, within=30, what="current values resent")
        await wait_for(lambda: collector.device_states("m1")[-1] == "online", within=30, what="online again")
        await asyncio.sleep(0.5)  # one more publishing interval for the last batch
        detected = wire.now_us()

    samples = collector.samples("m1")
    markers = [s for s in samples if s.status == BAD and s.value is None]
    assert markers and all(stopped <= m.ts <= detected for m in markers), "marker not on the gateway's clock"
    assert {m.tag for m in markers} == {t for t in {s.tag for s in samples}}
    latest: dict[str, wire.Sample] = {}
    for s in samples:
        if s.tag not in latest or s.ts >= latest[s.tag].ts:
            latest[s.tag] = s
    bad = {tag: s for tag, s in latest.items() if s.status != wire.STATUS_GOOD}
    assert bad == {}, f"tags whose latest value is not Good after the reconnect: {sorted(bad)}"
    program = latest["Status/Program"]
    assert program.value == "P-OLD" and program.ts > max(m.ts for m in markers)
    assert any(s.tag == "Status/Program" and s.ts == old for s in samples)  # the original, too
