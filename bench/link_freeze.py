"""A 3 s link freeze between the gateway and a healthy device: values lost, markers, resume time.

A `plantwire sim` process (its JSONL record is the ground truth) -> a TCP proxy that stops
forwarding for --freeze seconds -> the gateway (in this process) -> Mosquitto -> a subscriber.
Prints what was produced, what was lost, how many outage markers were written, whether the session
was kept, and how long after the link came back values newer than the freeze arrived.

    .venv/bin/python bench/link_freeze.py --tags 40 --rate 50 --freeze 3
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "gateway"))

from gwtest_link import FreezingProxy, SimProcess
from gwtest_support import collecting, gateway_running, gateway_settings

from plantwire import wire
from plantwire.broker import MosquittoProcess, free_port
from plantwire.logs import configure_logging
from plantwire_gateway.settings import DeviceConfig


async def until(condition: object, within: float) -> float:
    start = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - start > within:
            raise SystemExit(f"timed out after {within}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def run(args: argparse.Namespace, work: Path, broker: MosquittoProcess) -> None:
    sim = SimProcess("meter-f", work, tags=args.tags, rate=args.rate)
    await asyncio.to_thread(sim.start)
    try:
        with collecting(broker, "bench-freeze", "bench-freeze-sub") as collector:
            async with FreezingProxy(sim.port) as proxy:
                dev = DeviceConfig(
                    id=sim.name, endpoint=proxy.endpoint, root=sim.root, publishing_interval_ms=100
                )
                settings = gateway_settings("bench-freeze", broker, work / "gw", [dev])
                async with gateway_running(settings) as gateway:

                    def newest() -> int:
                        samples = collector.samples(sim.name)
                        return max((s.ts for s in samples), default=0)

                    await until(lambda: len(collector.samples(sim.name)) > 500, 60)
                    since = newest()
                    connections = proxy.connections
                    await proxy.freeze(args.freeze)
                    thawed = wire.now_us()
                    resume = await until(lambda: newest() > thawed, 60)
                    await asyncio.sleep(2.0)  # the steady state after the freeze
                    until_ts = wire.now_us() - 1_000_000
                    stats = gateway.stats()
        await asyncio.to_thread(sim.stop)
        got = {(s.tag, s.ts) for s in collector.samples(sim.name)}
        produced = [k for k in sim.produced() if since <= k[1] <= until_ts]
        lost = [k for k in produced if k not in got]
        markers = [s for s in collector.samples(sim.name) if s.status == wire.STATUS_BAD_NO_COMMUNICATION]
        seconds = (until_ts - since) / 1e6
        print(f"link freeze          {args.freeze:.1f} s at ~{len(produced) / seconds:.0f} values/s")
        print(f"values produced      {len(produced)} (during the window around the freeze)")
        print(f"values lost          {len(lost)}")
        print(f"outage markers       {len(markers)}")
        print(
            f"session kept         {proxy.connections == connections} "
            f"(reconnects {stats['device_reconnects']})"
        )
        print(f"resume time          {resume * 1000:.0f} ms after the link came back (newer values arrive)")
    finally:
        await asyncio.to_thread(sim.stop)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tags", type=int, default=40, help="extra synthetic tags of the simulated meter")
    parser.add_argument("--rate", type=float, default=50.0, help="simulator ticks per second")
    parser.add_argument("--freeze", type=float, default=3.0, help="seconds the link is frozen")
    args = parser.parse_args()
    configure_logging("warning", "console")
    work = Path(tempfile.mkdtemp(prefix="link-freeze-"))
    broker = MosquittoProcess(port=free_port(), data_dir=work / "mosquitto")
    broker.start()
    try:
        asyncio.run(run(args, work, broker))
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
