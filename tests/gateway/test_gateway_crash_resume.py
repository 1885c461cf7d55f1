"""kill -9 of the gateway: the restarted process resumes the OPC UA session and its subscription.

What the device produced while the gateway was dead comes out of the server's monitored-item
queues; what is lost is at most what the dead process had received but not yet put into its outbox
(the last publishing interval or so before the kill). Counted against the simulator's own record.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from gwtest_link import SimProcess
from gwtest_support import Collector, wait_for

from plantwire import wire
from plantwire.broker import MosquittoProcess, free_port, wait_for_port

pytestmark = pytest.mark.integration


def start_gateway(work: Path, config: Path, broker: MosquittoProcess) -> subprocess.Popen[bytes]:
    health = free_port()
    argv = [sys.executable, "-m", "plantwire", "--log-format", "json", "gateway",
            "--config", str(config), "--mqtt-port", str(broker.port), "--data-dir", str(work / "gw"),
            "--health-port", str(health)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=(work / "gateway.log").open("ab"))
    wait_for_port("127.0.0.1", health, timeout=90)
    return proc


async def test_values_produced_while_the_gateway_was_dead_are_recovered(
    tmp_path: Path, mosquitto: MosquittoProcess, collector: Collector, unique_id: str
) -> None:
    sim = SimProcess("meter-k", tmp_path, tags=5, rate=20)
    await asyncio.to_thread(sim.start)
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'id = "{unique_id}"\n[[devices]]\nid = "{sim.name}"\nendpoint = "{sim.endpoint}"\n'
        f'root = "{sim.root}"\npublishing_interval_ms = 100\n'
    )
    gateway = None
    try:
        async with asyncio.timeout(180):
            gateway = await asyncio.to_thread(start_gateway, tmp_path, config, mosquitto)
            await wait_for(lambda: len(collector.samples(sim.name)) > 100, within=60, what="values flowing")
            gateway.send_signal(signal.SIGKILL)
            await asyncio.to_thread(gateway.wait)
            killed = wire.now_us()
            await asyncio.sleep(3.0)  # the outage itself: the device keeps producing
            restarted = wire.now_us()
            gateway = await asyncio.to_thread(start_gateway, tmp_path, config, mosquitto)
            await wait_for(
                lambda: max(s.ts for s in collector.samples(sim.name)) > restarted + 1_000_000,
                within=60,
                what="values after the restart",
            )
            await asyncio.to_thread(sim.stop)
            got = {(s.tag, s.ts) for s in collector.samples(sim.name)}
            produced = sim.produced()
            first = min(ts for _, ts in got)
            during = [k for k in produced if killed + 300_000 <= k[1] <= restarted]
            lost_during = [k for k in during if k not in got]
            before = [k for k in produced if first <= k[1] < killed + 300_000 and k not in got]
            after = [k for k in produced if restarted < k[1] <= restarted + 1_000_000 and k not in got]
        print(
            f"produced while dead {len(during)}, lost of those {len(lost_during)}; "
            f"lost just before the kill {len(before)}"
        )
        assert len(during) > 100
        assert lost_during == [], f"{len(lost_during)} of {len(during)} lost, first {sorted(lost_during)[:3]}"
        assert after == []
        # At most the values of the last moments before the kill (received, not yet in the outbox).
        assert len(before) <= 5 * 20, f"{len(before)} lost before the kill"
        markers = [s for s in collector.samples(sim.name) if s.status == wire.STATUS_BAD_NO_COMMUNICATION]
        assert markers == []
    finally:
        if gateway is not None and gateway.poll() is None:
            os.kill(gateway.pid, signal.SIGTERM)
            await asyncio.to_thread(gateway.wait, 30)
        await asyncio.to_thread(sim.stop)
