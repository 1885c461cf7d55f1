"""The whole path, in-process: simulated machines -> gateway -> Mosquitto -> platform -> REST.

Every value a machine produced after the gateway subscribed must be in the store once, with the
same source timestamp and value, and the data messages of each device must arrive with no gap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from plant_harness import bearer, gateway_for, gateway_running, platform_settings_for, token_for, until

from plantwire.broker import MosquittoProcess, free_port
from plantwire.timeunits import to_iso
from plantwire_gateway.service import Gateway
from plantwire_platform.service import RunningPlatform, platform_running
from plantwire_sims.machine import SimMachine

pytestmark = pytest.mark.integration


@dataclass
class Plant:
    machines: list[SimMachine]
    gateway: Gateway
    platform: RunningPlatform
    gateway_id: str
    token: str


@contextlib.asynccontextmanager
async def running_plant(broker: MosquittoProcess, tmp_path: Path, gw_id: str) -> AsyncIterator[Plant]:
    profiles = [("cnc", f"{gw_id}-cnc"), ("pump", f"{gw_id}-pump"), ("meter", f"{gw_id}-meter")]
    async with contextlib.AsyncExitStack() as stack:
        machines = [
            await stack.enter_async_context(
                SimMachine(profile, name, free_port(), rate_hz=20, seed=i, extra_tags=5, record=True)
            )
            for i, (profile, name) in enumerate(profiles, start=1)
        ]
        settings = platform_settings_for(broker, tmp_path, f"p-{gw_id}")
        admin = token_for(settings)
        platform = await stack.enter_async_context(platform_running(settings))
        await platform.ingest.wait_subscribed()
        gateway = await stack.enter_async_context(
            gateway_running(gateway_for(gw_id, broker, tmp_path / "gw", machines))
        )
        yield Plant(machines, gateway, platform, gw_id, admin)


async def test_every_value_reaches_the_store_once_with_its_source_timestamp(
    mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    async with asyncio.timeout(90), running_plant(mosquitto, tmp_path, unique_id) as plant:
        store = plant.platform.store
        names = [m.name for m in plant.machines]

        async def all_online_with_data() -> bool:
            devices = {d.id: d for d in await asyncio.to_thread(store.list_devices)}
            return all(
                n in devices and devices[n].state == "online" and devices[n].last_seq >= 10 for n in names
            )

        await until(all_online_with_data)
        for m in plant.machines:
            m.pause()
        # Everything produced so far must arrive; the stream then goes quiet.
        expected: dict[str, dict[tuple[str, int], object]] = {}
        for m in plant.machines:
            expected[m.name] = {(tag, ts): v for tag, ts, v in m.produced}

        async def stored(device: str) -> dict[tuple[str, int], object]:
            out: dict[tuple[str, int], object] = {}
            for tag in {tag for tag, _ in expected[device]}:
                points = await asyncio.to_thread(store.series, device, tag, 0, 2**62, 1_000_000)
                out.update({(tag, p.ts): p.value for p in points})
            return out

        async def caught_up() -> bool:
            for m in plant.machines:
                got = await stored(m.name)
                last = max(ts for _, ts in expected[m.name])
                if not any(ts == last for _, ts in got):
                    return False
            return True

        await until(caught_up)

        for m in plant.machines:
            got = await stored(m.name)
            # The subscription starts at some point of the machine's life: from each tag's first stored
            # value on, every produced value must be there, exactly, and nothing else.
            first = {}
            for tag, ts in got:
                first[tag] = min(ts, first.get(tag, ts))
            want = {k: v for k, v in expected[m.name].items() if k[1] >= first.get(k[0], 2**62)}
            assert set(got) == set(want), (
                f"{m.name}: missing {len(set(want) - set(got))}, extra {set(got) - set(want)}"
            )
            for key, value in want.items():
                assert got[key] == pytest.approx(value) if isinstance(value, float) else got[key] == value, (
                    key
                )
            assert len(want) > 20 * len(m.tags) // 2, "too few values to prove anything"

        stats = plant.platform.ingest.stats()
        assert stats.seq_gaps == 0
        assert sum(stats.decode_errors.values()) == 0
        devices = {d.id: d for d in await asyncio.to_thread(store.list_devices)}
        gw_stats = plant.gateway.stats()
        assert sum(devices[n].last_seq for n in names) == gw_stats["batches_appended"]

        # REST answers match the store.
        async with aiohttp.ClientSession(base_url=plant.platform.url, headers=bearer(plant.token)) as http:
            cnc = plant.machines[0].name
            async with http.get("/api/latest", params={"device": cnc}) as resp:
                assert resp.status == 200
                latest = {v["tag"]: v for v in (await resp.json())["values"]}
            for value in await asyncio.to_thread(store.latest, cnc):
                assert latest[value.tag]["ts"] == to_iso(value.ts)
                assert latest[value.tag]["value"] == value.value
            assert latest["Spindle/Speed"]["unit"] == "rpm"

            points = await asyncio.to_thread(store.series, cnc, "Spindle/Speed", 0, 2**62, 100_000)
            start, end = points[0].ts, points[-1].ts + 1
            query = {"device": cnc, "tag": "Spindle/Speed", "start": to_iso(start), "end": to_iso(end)}
            async with http.get("/api/series", params=query) as resp:
                body = await resp.json()
            assert [(p["ts"], p["value"]) for p in body["points"]] == [
                (to_iso(p.ts), p.value) for p in points
            ]

            async with http.get("/api/health") as resp:
                health = await resp.json()
            assert health["status"] == "ok" and health["points"] == await asyncio.to_thread(
                store.count_points
            )

            async with http.get("/api/devices") as resp:
                listed = {d["id"]: d for d in (await resp.json())["devices"]}
            for n in names:
                assert listed[n]["gateway"] == plant.gateway_id
                assert listed[n]["tag_count"] == len(next(m for m in plant.machines if m.name == n).tags)
