"""OEE of CNC machines per window: availability x performance x quality, from three tags.

- availability = time in RUNNING / time observed in the window (the whole window once the machine
  was seen from its start);
- performance = ideal_cycle_s x parts made / time in RUNNING;
- quality = (parts - rejects) / parts.

Source time drives everything: a window [start, start + window_s) closes when the first point at
or after its end arrives, and its figures are emitted on the machine as `oee/Availability`,
`oee/Performance`, `oee/Quality`, `oee/OEE`, `oee/Parts` and `oee/Rejects`, stamped with the
window's start. A counter that goes down (replaced, reset) counts its new value as made since.
A ratio with nothing to divide by (no running time, no parts) is not emitted.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from plantwire_platform.apps import App, LivePoint

US = 1_000_000
RUNNING = "RUNNING"
STATE = "Status/State"
PARTS = "Production/PartCount"
REJECTS = "Production/RejectCount"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_s: int = Field(default=28_800, ge=1, description="Window (shift) length; aligned to the epoch")
    ideal_cycle_s: float = Field(default=40.0, gt=0, description="Ideal time per part")


@dataclass
class _Machine:
    window: int  # start of the current window, µs
    clock: int  # source time accounted up to, µs
    observed_from: int
    state: str | None = None
    run_us: int = 0
    parts: int = 0
    rejects: int = 0
    last_parts: int | None = None
    last_rejects: int | None = None


def _increase(last: int | None, value: int) -> int:
    if last is None:
        return 0
    return value - last if value >= last else value


class Oee(App[Config]):
    Config = Config

    async def start(self) -> None:
        self._machines: dict[str, _Machine] = {}
        self._window_us = self.config.window_s * US

    async def on_points(self, points: list[LivePoint]) -> None:
        for p in points:
            m = self._machines.get(p.device)
            if m is None:
                start = p.ts // self._window_us * self._window_us
                m = self._machines[p.device] = _Machine(start, p.ts, p.ts)
            self._advance(p.device, m, p.ts)
            if p.tag == STATE:
                m.state = str(p.value)
            elif p.tag == PARTS and isinstance(p.value, int | float):
                m.parts += _increase(m.last_parts, int(p.value))
                m.last_parts = int(p.value)
            elif p.tag == REJECTS and isinstance(p.value, int | float):
                m.rejects += _increase(m.last_rejects, int(p.value))
                m.last_rejects = int(p.value)

    def _advance(self, device: str, m: _Machine, ts: int) -> None:
        """Account time up to `ts`, closing every window that ends on the way."""
        while ts >= m.window + self._window_us:
            end = m.window + self._window_us
            self._account(m, end)
            self._close(device, m, end)
            m.window, m.observed_from = end, end
            m.run_us = m.parts = m.rejects = 0
        self._account(m, ts)

    @staticmethod
    def _account(m: _Machine, until: int) -> None:
        if until > m.clock:
            if m.state == RUNNING:
                m.run_us += until - m.clock
            m.clock = until

    def _close(self, device: str, m: _Machine, end: int) -> None:
        observed = end - m.observed_from
        emit = self.ctx.emit
        emit(device, "Parts", m.parts, ts=m.window)
        emit(device, "Rejects", m.rejects, ts=m.window)
        if observed <= 0:
            return
        availability = m.run_us / observed
        emit(device, "Availability", availability, ts=m.window)
        if m.run_us <= 0 or m.parts <= 0:
            return
        performance = self.config.ideal_cycle_s * US * m.parts / m.run_us
        quality = (m.parts - m.rejects) / m.parts
        emit(device, "Performance", performance, ts=m.window)
        emit(device, "Quality", quality, ts=m.window)
        emit(device, "OEE", availability * performance * quality, ts=m.window)
        self.ctx.metrics["windows_closed"] = self.ctx.metrics.get("windows_closed", 0) + 1
