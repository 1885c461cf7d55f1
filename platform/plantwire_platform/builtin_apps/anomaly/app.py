"""Vibration anomaly: an EWMA of a pump's vibration, scored against a learnt healthy baseline.

While the pump runs, the first `learn_samples` readings (after `warmup_samples` skipped at each
start) give the baseline mean and standard deviation (at least `min_std_ratio` x mean, so a very
steady pump does not alarm on noise). Then each reading updates an EWMA (weight `alpha`) and
z = (ewma - mean) / std:

- z > z_raise raises an alarm on the pump's vibration tag (bearing wear grows the vibration);
- z < z_clear clears it;
- z < -z_raise means the level fell far below the baseline: maintenance (the simulator's Reset
  replaces the bearing). The alarm clears and the baseline is learnt again from the new level.

Every `emit_every` readings, `anomaly/VibrationEWMA` and `anomaly/ZScore` are emitted on the pump.
Known limit: a changed speed setpoint changes the healthy level too; restart the app to relearn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from plantwire_platform.apps import App, LivePoint

RUNNING = "RUNNING"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag: str = "Condition/VibrationRMS"
    state_tag: str = "Status/State"
    alpha: float = Field(default=0.1, gt=0, le=1)
    learn_samples: int = Field(default=60, ge=2)
    warmup_samples: int = Field(default=10, ge=0)
    min_std_ratio: float = Field(default=0.05, ge=0)
    z_raise: float = Field(default=4.0, gt=0)
    z_clear: float = Field(default=2.0)
    emit_every: int = Field(default=10, ge=1)


@dataclass
class _Pump:
    running: bool = True
    skip: int = 0
    learning: list[float] = field(default_factory=list)
    mean: float | None = None
    std: float = 0.0
    ewma: float = 0.0
    active: bool = False
    count: int = 0


class VibrationAnomaly(App[Config]):
    Config = Config

    async def start(self) -> None:
        self._pumps: dict[str, _Pump] = {}
        for alarm in await self.ctx.active_alarms():
            self._pumps[alarm.device] = _Pump(active=True)

    async def on_points(self, points: list[LivePoint]) -> None:
        c = self.config
        for p in points:
            pump = self._pumps.setdefault(p.device, _Pump())
            if p.tag == c.state_tag:
                running = p.value == RUNNING
                if running and not pump.running:
                    pump.skip = c.warmup_samples
                pump.running = running
            elif p.tag == c.tag and isinstance(p.value, int | float) and not isinstance(p.value, bool):
                if pump.running:
                    await self._reading(p.device, pump, float(p.value), p.ts)

    async def _reading(self, device: str, pump: _Pump, v: float, ts: int) -> None:
        c = self.config
        if pump.skip > 0:
            pump.skip -= 1
            return
        if pump.mean is None:
            pump.learning.append(v)
            if len(pump.learning) >= c.learn_samples:
                mean = sum(pump.learning) / len(pump.learning)
                std = math.sqrt(sum((x - mean) ** 2 for x in pump.learning) / len(pump.learning))
                pump.mean, pump.std, pump.ewma = mean, max(std, c.min_std_ratio * abs(mean), 1e-9), mean
                pump.learning = []
                self.log.info(
                    "anomaly_baseline_learnt", device=device, mean=round(mean, 4), std=round(pump.std, 4)
                )
            return
        pump.ewma = c.alpha * v + (1 - c.alpha) * pump.ewma
        z = (pump.ewma - pump.mean) / pump.std
        pump.count += 1
        if pump.count % c.emit_every == 0:
            self.ctx.emit(device, "VibrationEWMA", round(pump.ewma, 4), ts=ts, unit="mm/s")
            self.ctx.emit(device, "ZScore", round(z, 3), ts=ts)
        if not pump.active and z > c.z_raise:
            pump.active = True
            await self.ctx.raise_alarm(
                device,
                c.tag,
                "warning",
                f"vibration {pump.ewma:.3g} mm/s is {z:.1f} sigma above the healthy {pump.mean:.3g}: "
                "check the bearing",
                ts=ts,
            )
        elif pump.active and z < c.z_clear:
            pump.active = False
            await self.ctx.clear_alarm(device, c.tag, ts=ts)
        if z < -c.z_raise:  # far below the baseline: maintenance happened; learn the new level
            pump.mean = None
            pump.count = 0
