"""Energy per period (default: kWh per hour) from a meter's ever-growing energy register.

Between two readings the increase is spread evenly over time, so an interval that crosses the hour
is split between the two hours. A register that goes down was reset (or replaced): its new value is
the energy since the reset. A period [start, start + period_s) is emitted on the meter as
`energy/kWh`, stamped with its start, when the first reading at or after its end arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from plantwire_platform.apps import App, LivePoint

US = 1_000_000


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period_s: int = Field(
        default=3600, ge=1, description="Length of each energy period; aligned to the epoch"
    )
    tag: str = "Energy/Total"


@dataclass
class _Meter:
    ts: int
    value: float
    periods: dict[int, float] = field(default_factory=dict)
    resets: int = 0


class Energy(App[Config]):
    Config = Config

    async def start(self) -> None:
        self._meters: dict[str, _Meter] = {}
        self._period = self.config.period_s * US

    async def on_points(self, points: list[LivePoint]) -> None:
        for p in points:
            if p.tag != self.config.tag or isinstance(p.value, bool) or not isinstance(p.value, int | float):
                continue
            self._reading(p.device, p.ts, float(p.value))

    def _reading(self, device: str, ts: int, value: float) -> None:
        m = self._meters.get(device)
        if m is None:
            self._meters[device] = _Meter(ts, value)
            return
        if ts <= m.ts:
            return  # out of order or repeated: already accounted
        if value >= m.value:
            delta = value - m.value
        else:
            delta = value
            m.resets += 1
            self.ctx.metrics["resets"] = self.ctx.metrics.get("resets", 0) + 1
        self._spread(m, m.ts, ts, delta)
        m.ts, m.value = ts, value
        current = ts // self._period * self._period
        for start in sorted(k for k in m.periods if k < current):
            self.ctx.emit(device, "kWh", round(m.periods.pop(start), 6), ts=start, unit="kWh")

    def _spread(self, m: _Meter, t0: int, t1: int, delta: float) -> None:
        span = t1 - t0
        t = t0
        while t < t1:
            start = t // self._period * self._period
            end = min(start + self._period, t1)
            m.periods[start] = m.periods.get(start, 0.0) + delta * (end - t) / span
            t = end
