"""A few seconds of stall between the gateway and a healthy device lose nothing and mark nothing.

Ground truth is the simulator's own JSONL record; what counts is what reached MQTT. A 3 s freeze of
the link (a TCP proxy that stops forwarding) and a 3 s SIGSTOP of the simulator process must cost
zero values, no outage markers and no new session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gwtest_link import FreezingProxy, SimProcess
from gwtest_support import Collector, gateway_running, gateway_settings, wait_for

from plantwire import wire
from plantwire.broker import MosquittoProcess
from plantwire_gateway.settings import DeviceConfig

pytestmark = pytest.mark.integration


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimProcess]:
    machine = SimProcess("meter-s", tmp_path, tags=10, rate=50)
    await asyncio.to_thread(machine.start)
    yield machine
    await asyncio.to_thread(machine.stop)


def _lost(sim: SimProcess, collector: Collector, since: int, until: int) -> list[tuple[str, int]]:
    got = {(s.tag, s.ts) for s in collector.samples(sim.name)}
    return sorted(k for k in sim.produced() if since <= k[1] <= until and k not in got)


async def test_link_freeze_and_device_stop_of_3s_lose_nothing(
    sim: SimProcess, mosquitto: MosquittoProcess, collector: Collector, unique_id: str, tmp_path: Path
) -> None:
    async with asyncio.timeout(120), FreezingProxy(sim.port) as proxy:
        dev = DeviceConfig(id=sim.name, endpoint=proxy.endpoint, root=sim.root, publishing_interval_ms=100)
        settings = gateway_settings(unique_id, mosquitto, tmp_path / "gw", [dev])
        async with gateway_running(settings) as gateway:
            await wait_for(lambda: len(collector.samples(sim.name)) > 200, within=30, what="values flowing")
            since = max(s.ts for s in collector.samples(sim.name))
            connections = proxy.connections  # endpoint discovery + the session's connection

            await proxy.freeze(3.0)
            resumed = wire.now_us()
            await wait_for(
                lambda: max(s.ts for s in collector.samples(sim.name)) > resumed, within=20, what="resume"
            )
            with sim.paused():
                await asyncio.sleep(3.0)  # the stall itself is the test's subject
            resumed = wire.now_us()
            await wait_for(
                lambda: max(s.ts for s in collector.samples(sim.name)) > resumed + 500_000,
                within=20,
                what="resume after SIGSTOP",
            )
            until = resumed
            stats = gateway.stats()
        # Everything the device produced between the first observed value and the end of the second
        # stall arrived (later values may still be in flight when the gateway stops: not counted).
        lost = _lost(sim, collector, since, until)
        produced = [k for k in sim.produced() if since <= k[1] <= until]
        assert len(produced) > 1000
        assert lost == [], f"{len(lost)} of {len(produced)} values lost, first {lost[:3]}"
        markers = [s for s in collector.samples(sim.name) if s.status == wire.STATUS_BAD_NO_COMMUNICATION]
        assert markers == []
        assert stats["device_reconnects"] == 0 and stats["outage_markers"] == 0
        assert proxy.connections == connections  # the same connection, session and subscription throughout
        assert "offline" not in collector.device_states(sim.name)


async def test_a_dropped_connection_resumes_the_same_session_and_loses_nothing(
    sim: SimProcess, mosquitto: MosquittoProcess, collector: Collector, unique_id: str, tmp_path: Path
) -> None:
    """A reset TCP connection: asyncua re-activates the session and transfers the subscription."""
    async with asyncio.timeout(120), FreezingProxy(sim.port) as proxy:
        dev = DeviceConfig(id=sim.name, endpoint=proxy.endpoint, root=sim.root, publishing_interval_ms=100)
        settings = gateway_settings(unique_id, mosquitto, tmp_path / "gw", [dev])
        async with gateway_running(settings) as gateway:
            await wait_for(lambda: len(collector.samples(sim.name)) > 200, within=30, what="values flowing")
            since = max(s.ts for s in collector.samples(sim.name))
            await proxy.freeze(1.0)  # values queue on the server meanwhile
            await proxy.drop_connections()
            await wait_for(
                lambda: gateway.stats()["sessions_resumed"] >= 1, within=30, what="session resumed"
            )
            resumed = wire.now_us()
            await wait_for(
                lambda: max(s.ts for s in collector.samples(sim.name)) > resumed + 500_000,
                within=20,
                what="resume",
            )
            stats = gateway.stats()
        lost = _lost(sim, collector, since, resumed)
        assert lost == [], f"{len(lost)} values lost, first {lost[:3]}"
        assert stats["device_reconnects"] == 0 and stats["outage_markers"] == 0
        assert proxy.connections >= 2
        assert collector.device_states(sim.name)[-1] == "online"
