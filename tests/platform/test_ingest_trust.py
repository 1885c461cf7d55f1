"""Ingest believes only what it should (issue 11, item 5), against a real Mosquitto and SQLite file:
a device's meta/status/data from a gateway that does not own it, values stamped outside the time
window and a seq jump are refused and counted; everything else of the same messages is stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

from test_ingest import Publisher, running_ingest, settings_for, until

from plantwire import wire
from plantwire.broker import MosquittoProcess
from plantwire_platform.ingest.sample_window import EARLIEST_US
from plantwire_platform.ingest.stats import LATENCY_BOUNDS_MS
from plantwire_platform.store.sqlite import SqliteStore

MINUTE_US = 60_000_000


def meta(endpoint: str) -> bytes:
    tag = wire.TagInfo("Speed", "ns=2;s=Speed", "Double", writable=True)
    return wire.encode_meta(wire.DeviceMeta(endpoint=endpoint, root="ns=2;s=Root", tags=[tag]))


async def test_another_gateway_cannot_re_own_a_device_until_an_admin_moves_it(
    tmp_path: Path, own_mosquitto: MosquittoProcess, unique_id: str
) -> None:
    owner, forger, dev = f"gw-{unique_id}", f"evil-{unique_id}", f"cnc-{unique_id}"
    publisher = Publisher(own_mosquitto, f"pub-{unique_id}")
    now = wire.now_us()
    with SqliteStore.open(tmp_path / "pw.sqlite") as store:
        settings = settings_for(own_mosquitto, f"p-{unique_id}", store.path)
        try:
            async with asyncio.timeout(30), running_ingest(settings, store) as ingest:
                await publisher.publish(
                    wire.device_topic(owner, dev, "meta"), meta("opc.tcp://real:4840"), True
                )
                await publisher.data(owner, dev, 1, [wire.Sample("Speed", now, 1.0)])
                await until(lambda: ingest.stats().points_stored == 1)
                # The reported attack: retained meta and status for cnc-1 under another gateway id.
                await publisher.publish(
                    wire.device_topic(forger, dev, "meta"), meta("opc.tcp://evil:4840"), True
                )
                status = wire.DeviceStatus(state="online", since=now, endpoint="opc.tcp://evil:4840")
                await publisher.publish(
                    wire.device_topic(forger, dev, "status"), wire.encode_device_status(status)
                )
                await publisher.data(forger, dev, 2, [wire.Sample("Speed", now + 1, 666.0)])
                await until(lambda: sum(ingest.stats().ownership_rejected.values()) == 3)
                assert ingest.stats().ownership_rejected == {"data": 1, "meta": 1, "status": 1}
                device = store.get_device(dev)
                assert device is not None and (device.gateway, device.endpoint) == (
                    owner,
                    "opc.tcp://real:4840",
                )
                assert [p.value for p in store.series(dev, "Speed", 0, 2**62, 10)] == [1.0]
                # The owner goes on as before; the refused messages were acknowledged (not redelivered).
                await publisher.data(owner, dev, 2, [wire.Sample("Speed", now + 2, 2.0)])
                await until(lambda: ingest.stats().points_stored == 2)

                # An admin moves the device: from now on the other gateway is the owner.
                assert store.move_device(dev, forger) == owner
                ingest.owners.moved(dev, forger)
                await publisher.data(forger, dev, 3, [wire.Sample("Speed", now + 3, 3.0)])
                await publisher.data(owner, dev, 4, [wire.Sample("Speed", now + 4, 4.0)])
                await until(lambda: ingest.stats().ownership_rejected["data"] == 2)
                await until(lambda: ingest.stats().points_stored == 3)
                assert [p.value for p in store.series(dev, "Speed", 0, 2**62, 10)] == [1.0, 2.0, 3.0]
            # A restart re-reads retained meta: the old owner's stays refused, ownership persisted.
            async with asyncio.timeout(30), running_ingest(settings, store) as ingest:
                await until(lambda: ingest.stats().ownership_rejected["meta"] == 1)
                device = store.get_device(dev)
                assert device is not None and device.gateway == forger
        finally:
            for gw in (owner, forger):
                await publisher.publish(wire.device_topic(gw, dev, "meta"), b"", True)
            publisher.close()


async def test_values_outside_the_time_window_and_seq_jumps_are_counted_not_stored(
    tmp_path: Path, own_mosquitto: MosquittoProcess, unique_id: str
) -> None:
    gw, dev = f"gw-{unique_id}", f"dev-{unique_id}"
    publisher = Publisher(own_mosquitto, f"pub-{unique_id}")
    now = wire.now_us()
    year_9999 = 253_402_300_799_000_000
    with SqliteStore.open(tmp_path / "pw.sqlite") as store:
        settings = settings_for(own_mosquitto, f"p-{unique_id}", store.path)
        try:
            async with asyncio.timeout(30), running_ingest(settings, store) as ingest:
                await publisher.data(
                    gw,
                    dev,
                    1,
                    [
                        wire.Sample("t", now, 1.0),
                        wire.Sample("t", year_9999, 9999.0),  # would pin /api/latest forever
                        wire.Sample("t", now + 6 * MINUTE_US, 6.0),  # beyond the default 5 minutes
                        wire.Sample("t", now + 4 * MINUTE_US, 4.0),  # within them: stored
                        wire.Sample("t", EARLIEST_US - 1, 0.0),
                        wire.Sample("t", EARLIEST_US, 2000.0),  # backfill: stored, kept out of latency
                    ],
                )
                await until(lambda: ingest.stats().points_stored == 3)
                stats = ingest.stats()
                assert stats.values_rejected == {"future": 2, "before_2000": 1}
                latest = store.latest(dev)
                assert [(v.ts, v.value) for v in latest] == [(now + 4 * MINUTE_US, 4.0)]
                assert stats.latency.count == 3 and stats.latency.late == 1
                assert stats.latency.p99_ms is not None and stats.latency.p99_ms <= LATENCY_BOUNDS_MS[-1]

                # seq 2^63-1 is a jump: counted, no gaps, and the next real message counts normally.
                await publisher.data(gw, dev, 2**63 - 1, [wire.Sample("t", now + 1, 5.0)])
                await publisher.data(gw, dev, 2, [wire.Sample("t", now + 2, 6.0)])
                await until(lambda: ingest.stats().points_stored == 5)
                stats = ingest.stats()
                assert (stats.seq_jumps, stats.seq_gaps) == (1, 0)
                device = store.get_device(dev)
                assert device is not None and device.last_seq == 2
        finally:
            publisher.close()
