"""The parts app on the Replay harness with a real registry on SQLite: one identifier per part.

The points come from the CNC simulator's own model (plantwire_sims.cnc.CncModel) stepped at 1 Hz;
the expected parts are worked out from the model's counters, independently of the app.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from plantwire.timeunits import to_iso
from plantwire_platform.apps.replay import Replay, S, point
from plantwire_platform.builtin_apps.parts.app import Parts
from plantwire_platform.identifiers.catalog import IdentifierCatalog
from plantwire_platform.identifiers.registry import LocalRegistry
from plantwire_platform.identifiers.settings import IdentifierSettings
from plantwire_platform.ingest.live_bus import LivePoint
from plantwire_sims.cnc import CncModel

T0 = 1_764_000_000 * S


@dataclass
class Made:
    count: int
    end: int
    program: str
    rejected: bool
    load_max: float


def simulate(seconds: int, seed: int) -> tuple[list[LivePoint], list[Made]]:
    model = CncModel(random.Random(seed))
    inputs = {"Spindle/SpeedSetpoint": 8_000.0}
    points: list[LivePoint] = []
    made: list[Made] = []
    last_parts = last_rejects = None
    loads: list[float] = []
    for t in range(seconds):
        ts = T0 + t * S
        values = model.step(0.0 if t == 0 else 1.0, inputs)
        points.extend(point("cnc-7", tag, v, ts) for tag, v in values.items())
        loads.append(float(values["Spindle/Load"]))  # type: ignore[arg-type]
        parts, rejects = int(values["Production/PartCount"]), int(values["Production/RejectCount"])  # type: ignore[call-overload]
        if last_parts is not None and parts == last_parts + 1:
            made.append(Made(parts, ts, str(values["Status/Program"]), rejects > last_rejects, max(loads)))  # type: ignore[operator]
        if last_parts is None or parts != last_parts:
            loads = []
        last_parts, last_rejects = parts, rejects
    return points, made


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[LocalRegistry]:
    async with asyncio.timeout(10), IdentifierCatalog(tmp_path / "platform.sqlite") as catalog:
        yield LocalRegistry(IdentifierSettings(prefix="0.TEST"), catalog)


def _replay(registry: LocalRegistry | None) -> Replay:
    return Replay(Parts, identifiers=registry)


async def test_one_identifier_per_part_made_with_its_cycle_and_process_values(
    registry: LocalRegistry,
) -> None:
    points, made = simulate(1_200, seed=3)
    assert len(made) >= 10  # the sim makes a part every 28-95 s while running
    async with asyncio.timeout(60):
        replay = _replay(registry)
        async with replay:
            await replay.feed(points, batch_size=50)
        # The first part's cycle began before the app saw the counter: not minted, counted.
        expected = made[1:]
        assert replay.ctx.metrics["parts_partial"] == 1
        assert replay.ctx.metrics["parts_minted"] == len(expected)
        last = [v for _, v in replay.derived("cnc-7", "LastPart")]
        assert last == [f"0.TEST/part.cnc-7.{m.count}" for m in expected]
        for prev, m in zip(made, expected, strict=False):
            h = await registry.catalog.get(f"0.TEST/part.cnc-7.{m.count}")
            assert h is not None
            assert h.value("machine") == "cnc-7" and h.value("program") == m.program
            assert (h.value("start"), h.value("end")) == (to_iso(prev.end), to_iso(m.end))
            assert h.value("result") == ("reject" if m.rejected else "ok")
            assert float(h.value("spindle_load_max")) == pytest.approx(m.load_max, abs=1e-5)  # as written
            assert 0 < float(h.value("spindle_speed_mean")) <= 12_000
            assert h.value("URL") == f"http://127.0.0.1:8080/api/handles/0.TEST/part.cnc-7.{m.count}"
        total, _ = await registry.catalog.list_page("0.TEST", 0, 10)
        assert total == len(expected)


async def test_reject_at_the_same_time_as_the_count_marks_the_part(registry: LocalRegistry) -> None:
    d = "cnc-1"
    pts = [
        point(d, "Production/PartCount", 100, T0),
        point(d, "Production/RejectCount", 4, T0),
        point(d, "Status/Program", "O1001", T0),
        point(d, "Production/PartCount", 101, T0 + 40 * S),  # partial cycle: not minted
        point(d, "Spindle/Speed", 8_000.0, T0 + 50 * S),
        point(d, "Spindle/Speed", 6_000.0, T0 + 60 * S),
        point(d, "Spindle/Speed", 0.0, T0 + 70 * S),  # not spinning: not in the mean
        point(d, "Spindle/Load", 55.5, T0 + 60 * S),
        point(d, "Production/PartCount", 102, T0 + 80 * S),
        point(d, "Production/RejectCount", 5, T0 + 80 * S),  # same time: this part was rejected
        point(d, "Production/PartCount", 110, T0 + 200 * S),  # 8 made unseen: not minted
        point(d, "Production/PartCount", 3, T0 + 300 * S),  # counter replaced: new cycle
        point(d, "Production/PartCount", 4, T0 + 340 * S),
    ]
    async with asyncio.timeout(10):
        replay = _replay(registry)
        async with replay:
            await replay.feed(pts)
        h = await registry.catalog.get("0.TEST/part.cnc-1.102")
        gone = await registry.catalog.get("0.TEST/part.cnc-1.4")
    assert h is not None
    assert (h.value("result"), h.value("spindle_speed_mean"), h.value("spindle_load_max")) == (
        "reject",
        "7000.0",
        "55.5",
    )
    assert (h.value("start"), h.value("program")) == (to_iso(T0 + 40 * S), "O1001")
    assert replay.ctx.metrics["parts_unobserved"] == 8
    assert replay.ctx.metrics["parts_minted"] == 1  # 102 only; the part ending at 4 starts unseen
    assert gone is None


async def test_a_reused_count_gets_its_end_time_appended(registry: LocalRegistry) -> None:
    d = "cnc-1"
    pts = [point(d, "Production/PartCount", c, T0 + i * 30 * S) for i, c in enumerate([9, 10, 11])]
    async with asyncio.timeout(10):
        await registry.mint("part", "cnc-1.11", {"machine": d, "start": "s", "end": "e"})
        replay = _replay(registry)
        async with replay:
            await replay.feed(pts)
    assert replay.derived(d, "LastPart") == [(T0 + 60 * S, f"0.TEST/part.cnc-1.11.{T0 // S + 60}")]


async def test_without_a_registry_the_app_runs_and_mints_nothing() -> None:
    d = "cnc-1"
    pts = [point(d, "Production/PartCount", c, T0 + i * 30 * S) for i, c in enumerate([1, 2, 3, 4])]
    async with asyncio.timeout(10):
        replay = _replay(None)
        async with replay:
            await replay.feed(pts)
    assert replay.ctx.metrics["parts_minted"] == 0 and replay.emitted == []
