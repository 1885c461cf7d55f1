"""Command round trip: REST write -> platform -> Mosquitto -> gateway -> OPC UA write + read back -> reply.

Starts a real Mosquitto, a CNC simulator, a gateway and a platform on loopback, then times N
setpoint writes and N method calls through the REST API. Prints the medians and the 95th percentile.

    python bench/commands.py --count 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from plantwire.broker import MosquittoProcess, free_port
from plantwire.demo_auth import bearer, demo_admin_token
from plantwire_gateway.service import Gateway
from plantwire_gateway.settings import load_settings
from plantwire_platform.service import platform_running
from plantwire_platform.settings import PlatformSettings
from plantwire_sims.machine import SimMachine


def _figures(name: str, wall: list[float], rtt: list[float], gw_ms: list[float]) -> None:
    q95 = statistics.quantiles(wall, n=20)[-1]
    print(
        f"{name:6s} n={len(wall)}  HTTP median {statistics.median(wall):.1f} ms  p95 {q95:.1f} ms  "
        f"(MQTT round trip median {statistics.median(rtt):.1f} ms, of which in the gateway "
        f"{statistics.median(gw_ms):.1f} ms)"
    )


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoProcess(port=free_port(), data_dir=Path(tmp) / "mq")
        broker.start()
        try:
            async with contextlib.AsyncExitStack() as stack:
                cnc = await stack.enter_async_context(SimMachine("cnc", "cnc-b", free_port(), rate_hz=10))
                settings = PlatformSettings.load(
                    mqtt={"port": broker.port},
                    http={"port": free_port()},
                    store={"path": Path(tmp) / "p.sqlite"},
                    client_id="bench-cmd",
                )
                admin = demo_admin_token(Path(tmp))  # the platform's token catalog sits by its store
                platform = await stack.enter_async_context(platform_running(settings))
                gw = Gateway(
                    load_settings(
                        overrides={
                            "id": "bench",
                            "mqtt": {"port": broker.port},
                            "data_dir": str(Path(tmp) / "gw"),
                        },
                        extra_devices=[{"id": "cnc-b", "endpoint": cnc.endpoint, "root": cnc.root_node_id}],
                    )
                )
                task = asyncio.create_task(gw.run())
                http = await stack.enter_async_context(
                    aiohttp.ClientSession(base_url=platform.url, headers=bearer(admin))
                )
                while True:
                    async with http.get("/api/devices/cnc-b") as r:
                        if r.status == 200 and (await r.json())["state"] == "online":
                            break
                    await asyncio.sleep(0.1)
                for name, path, body in (
                    (
                        "write",
                        "/api/devices/cnc-b/write",
                        lambda i: {"tag": "Spindle/SpeedSetpoint", "value": 1000 + i},
                    ),
                    ("call", "/api/devices/cnc-b/call", lambda i: {"method": "Start"}),
                ):
                    wall, rtt, gw_ms = [], [], []
                    for i in range(count):
                        t0 = time.perf_counter()
                        async with http.post(path, json=body(i)) as r:
                            data = await r.json()
                            assert r.status == 200, data
                        wall.append((time.perf_counter() - t0) * 1000)
                        rtt.append(data["rtt_ms"])
                        gw_ms.append(data["gateway_ms"])
                    _figures(name, wall, rtt, gw_ms)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=50)
    asyncio.run(main(parser.parse_args().count))
