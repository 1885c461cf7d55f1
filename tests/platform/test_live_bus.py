"""The live bus: committed points reach matching subscribers; a slow one loses only its own oldest."""

from __future__ import annotations

import asyncio

from plantwire import wire
from plantwire_platform.ingest.live_bus import LiveBus, LivePoint
from plantwire_platform.store.model import IncomingBatch


def batch(device: str, tag: str, n: int, start: int = 0) -> IncomingBatch:
    samples = [wire.Sample(tag, start + i, float(i)) for i in range(n)]
    return IncomingBatch("gw", device, wire.DataBatch(1, 0, samples))


async def test_points_from_the_writer_thread_reach_matching_subscribers() -> None:
    bus = LiveBus(asyncio.get_running_loop())
    with bus.subscribe("pump-*", "Hydraulics/*") as pumps, bus.subscribe() as everything:
        await asyncio.to_thread(
            bus.publish_committed, [batch("pump-1", "Hydraulics/Flow", 3), batch("cnc-1", "Spindle/Speed", 2)]
        )
        async with asyncio.timeout(5):
            got = await pumps.next_batch()
            assert [(p.device, p.tag, p.ts) for p in got] == [
                ("pump-1", "Hydraulics/Flow", t) for t in range(3)
            ]
            assert len(await everything.next_batch()) == 5
    assert bus.subscribers == 0


async def test_a_slow_subscriber_drops_its_oldest_points_and_counts_them() -> None:
    bus = LiveBus(asyncio.get_running_loop())
    with bus.subscribe(maxsize=4) as slow, bus.subscribe(maxsize=100) as fast:
        for i in range(3):
            bus.publish([LivePoint("d", "t", i * 3 + j, j, 0) for j in range(3)])
        assert [p.ts for p in slow.take()] == [5, 6, 7, 8]
        assert slow.dropped == 5
        assert len(fast.take()) == 9 and fast.dropped == 0
        bus.publish([LivePoint("d", "t", 100 + j, j, 0) for j in range(10)])
        assert [p.ts for p in slow.take()] == [106, 107, 108, 109]
        assert slow.dropped == 11


async def test_each_subscription_gets_its_own_points_of_a_commit_in_order() -> None:
    bus = LiveBus(asyncio.get_running_loop())
    with (
        bus.subscribe("pump-*", "Hydraulics/Flow") as flow,
        bus.subscribe("pump-1", "*") as pump1,
        bus.subscribe("cnc-*", "*") as cncs,
    ):
        committed = [
            batch("pump-1", "Hydraulics/Flow", 2),
            batch("meter-1", "Energy/Total", 3),
            batch("pump-2", "Hydraulics/Flow", 2, start=10),
            batch("pump-1", "Hydraulics/Pressure", 1, start=20),
        ]
        await asyncio.to_thread(bus.publish_committed, committed)
        async with asyncio.timeout(5):
            got_flow, got_pump1 = await flow.next_batch(), await pump1.next_batch()
        assert [(p.device, p.tag, p.ts) for p in got_flow] == [
            ("pump-1", "Hydraulics/Flow", 0),
            ("pump-1", "Hydraulics/Flow", 1),
            ("pump-2", "Hydraulics/Flow", 10),
            ("pump-2", "Hydraulics/Flow", 11),
        ]
        assert [(p.tag, p.ts) for p in got_pump1] == [
            ("Hydraulics/Flow", 0),
            ("Hydraulics/Flow", 1),
            ("Hydraulics/Pressure", 20),
        ]
        assert cncs.take() == []  # nothing of its devices
        assert bus.published == 8  # every committed point counts, taken or not
