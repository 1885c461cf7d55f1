"""A three-phase energy meter on a production line's feeder: per-phase power, power factor, a kWh register."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import ClassVar

from plantwire_sims.model import KW, KWH, ONE, MethodSpec, RandomWalk, TagSpec, Value, clamp, quantizer

LOAD_PERIOD_S = 300.0  # the line's production rhythm
PF_PERIOD_S = 900.0
_KW = quantizer(0.001)  # Power/* resolution

SPECS = (
    TagSpec("Power/L1", "Double", "Active power, phase L1", 0.0, KW, (0.0, 100.0), resolution=0.001),
    TagSpec("Power/L2", "Double", "Active power, phase L2", 0.0, KW, (0.0, 100.0), resolution=0.001),
    TagSpec("Power/L3", "Double", "Active power, phase L3", 0.0, KW, (0.0, 100.0), resolution=0.001),
    TagSpec(
        "Power/Total",
        "Double",
        "Active power, sum of the three phases",
        0.0,
        KW,
        (0.0, 300.0),
        resolution=0.001,
    ),
    TagSpec("Power/PowerFactor", "Double", "Total power factor", 0.9, ONE, (0.0, 1.0), resolution=0.0001),
    TagSpec(
        "Energy/Total", "Double", "Active energy import register; it only grows", 0.0, KWH, resolution=0.0001
    ),
)


class MeterModel:
    """Phase loads follow the line's rhythm plus drift; energy integrates total power and never decreases."""

    profile: ClassVar[str] = "meter"
    specs: ClassVar[tuple[TagSpec, ...]] = SPECS

    def __init__(self, rng: random.Random):
        self._rng = rng
        self._t = 0.0
        self._base = [rng.uniform(18.0, 35.0) for _ in range(3)]
        self._phase = [rng.uniform(0.0, 2 * math.pi) for _ in range(3)]
        self._drift = [RandomWalk(rng, sigma=0.15, low=-4.0, high=4.0) for _ in range(3)]
        self._pf_drift = RandomWalk(rng, sigma=0.002, low=-0.02, high=0.02)
        self.energy = rng.uniform(100_000.0, 900_000.0)

    def methods(self) -> tuple[MethodSpec, ...]:
        return ()

    def step(self, dt: float, inputs: Mapping[str, Value]) -> dict[str, Value]:
        rng = self._rng
        self._t += dt
        phases = []
        for base, phase, drift in zip(self._base, self._phase, self._drift, strict=True):
            rhythm = 1.0 + 0.2 * math.sin(2 * math.pi * self._t / LOAD_PERIOD_S + phase)
            # Rounded here already so that the total is exactly the sum of the phases a reader sees.
            phases.append(_KW(max(0.5, base * rhythm + drift.step(dt) + rng.gauss(0.0, 0.3))))
        total = _KW(sum(phases))
        self.energy += total * dt / 3600.0
        pf = 0.9 + 0.05 * math.sin(2 * math.pi * self._t / PF_PERIOD_S) + self._pf_drift.step(dt)
        return {
            "Power/L1": phases[0],
            "Power/L2": phases[1],
            "Power/L3": phases[2],
            "Power/Total": total,
            "Power/PowerFactor": clamp(pf, 0.5, 0.999),
            "Energy/Total": self.energy,
        }
