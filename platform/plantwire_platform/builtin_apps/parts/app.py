"""One identifier per produced part, minted from the CNC part counter.

A cycle runs from one increase of `Production/PartCount` to the next. While it runs the app keeps
the program last seen in it (a batch's first part starts during SETUP, before the new program is
loaded) and the cycle's process values (mean spindle speed while spinning, maximum
spindle load and temperature). When the counter goes up by one, the part is closed as soon as a
later point of that machine arrives (so a `Production/RejectCount` increase stamped with the same
time still counts): it is minted as `<prefix>/part.<machine>.<count>` with the `part` template's
values, and its identifier is emitted as the derived tag `parts/LastPart`.

Not minted, but counted in the app's metrics: the first part after the app starts (its start was
not seen: `parts_partial`), and parts made while the app saw nothing (a jump of the counter by more
than one: `parts_unobserved`; the cycle after a jump is partial too). A counter that goes down
starts a new cycle. If an identifier is already taken (a counter reset reused the number), the end
time in seconds is appended.

The app reaches the identifier service through `ctx.identifiers` (an `IdentifierRegistry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plantwire.wire import Value
from plantwire_platform.apps import App, LivePoint
from plantwire_platform.identifiers.catalog import HandleExists
from plantwire_platform.identifiers.registry import IdentifierRegistry
from plantwire_platform.timefmt import to_iso

US = 1_000_000
PARTS = "Production/PartCount"
REJECTS = "Production/RejectCount"
PROGRAM = "Status/Program"
SPEED = "Spindle/Speed"
LOAD = "Spindle/Load"
TEMPERATURE = "Thermal/SpindleTemperature"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spinning_rpm: float = Field(default=1.0, ge=0, description="Speeds above this count for the mean")


@dataclass
class _Cycle:
    start: int
    count: int
    observed: bool
    """False for the cycle running when the app started (its start is unknown)."""
    program: str | None = None
    speed_sum: float = 0.0
    speed_n: int = 0
    load_max: float | None = None
    temperature_max: float | None = None
    rejected: bool = False


@dataclass
class _Closing:
    """A part whose counter increase was seen; minted once a later point arrives."""

    cycle: _Cycle
    end: int
    count: int


@dataclass
class _Machine:
    cycle: _Cycle | None = None
    closing: _Closing | None = None
    program: str | None = None
    rejects: int | None = None


def _number(v: Value) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


class Parts(App[Config]):
    Config = Config

    async def start(self) -> None:
        self._machines: dict[str, _Machine] = {}
        self.registry: IdentifierRegistry | None = getattr(self.ctx, "identifiers", None)
        if self.registry is None:
            self.log.warning("parts_no_identifier_registry")
        for key in ("parts_minted", "parts_partial", "parts_unobserved", "mint_errors"):
            self.ctx.metrics.setdefault(key, 0)

    async def on_points(self, points: list[LivePoint]) -> None:
        for p in points:
            m = self._machines.setdefault(p.device, _Machine())
            if m.closing is not None and p.ts > m.closing.end:
                await self._mint(p.device, m.closing)
                m.closing = None
            self._apply(p, m)

    async def stop(self) -> None:
        for device, m in self._machines.items():
            if m.closing is not None:
                await self._mint(device, m.closing)
                m.closing = None

    def _apply(self, p: LivePoint, m: _Machine) -> None:
        value = _number(p.value)
        if p.tag == PROGRAM:
            m.program = str(p.value)
            if m.cycle is not None:
                m.cycle.program = m.program
        elif p.tag == PARTS and value is not None:
            self._count(p, m, int(value))
        elif p.tag == REJECTS and value is not None:
            if m.rejects is not None and value > m.rejects:
                target = m.closing.cycle if m.closing is not None else m.cycle
                if target is not None:
                    target.rejected = True
            m.rejects = int(value)
        elif m.cycle is not None and value is not None:
            c = m.cycle
            if p.tag == SPEED and value > self.config.spinning_rpm:
                c.speed_sum += value
                c.speed_n += 1
            elif p.tag == LOAD:
                c.load_max = value if c.load_max is None else max(c.load_max, value)
            elif p.tag == TEMPERATURE:
                c.temperature_max = value if c.temperature_max is None else max(c.temperature_max, value)

    def _count(self, p: LivePoint, m: _Machine, count: int) -> None:
        c = m.cycle
        if c is None or count < c.count:
            m.cycle = _Cycle(p.ts, count, observed=False, program=m.program)
            return
        if count == c.count:
            return
        jumped = count - c.count > 1
        if jumped:
            self.ctx.metrics["parts_unobserved"] += count - c.count
        elif c.observed:
            m.closing = _Closing(c, p.ts, count)
        else:
            self.ctx.metrics["parts_partial"] += 1
        m.cycle = _Cycle(p.ts, count, observed=not jumped, program=m.program)

    async def _mint(self, device: str, closing: _Closing) -> None:
        c = closing.cycle
        values: dict[str, Any] = {
            "machine": device,
            "program": c.program,
            "start": to_iso(c.start),
            "end": to_iso(closing.end),
            "result": "reject" if c.rejected else "ok",
            "spindle_speed_mean": round(c.speed_sum / c.speed_n, 1) if c.speed_n else None,
            "spindle_load_max": c.load_max,
            "spindle_temperature_max": c.temperature_max,
        }
        if self.registry is None:
            return
        suffix = f"{device}.{closing.count}"
        try:
            try:
                handle = await self.registry.mint("part", suffix, values)
            except HandleExists:
                handle = await self.registry.mint("part", f"{suffix}.{closing.end // US}", values)
        except (HandleExists, ValueError) as err:
            self.ctx.metrics["mint_errors"] += 1
            self.log.warning("part_mint_failed", device=device, count=closing.count, error=str(err))
            return
        self.ctx.metrics["parts_minted"] += 1
        self.ctx.emit(device, "LastPart", handle.name, ts=closing.end)
