"""Synthetic analog tags for load tests (`--tags N`): one cheap, deterministic sine per tag."""

from __future__ import annotations

import math
import random

from plantwire_sims.model import PERCENT, TagSpec, Value


def extra_specs(count: int) -> tuple[TagSpec, ...]:
    return tuple(
        TagSpec(
            f"Extra/T{i:04d}",
            "Double",
            "Synthetic analog signal for load tests",
            50.0,
            PERCENT,
            (0.0, 100.0),
            resolution=0.0001,
        )
        for i in range(1, count + 1)
    )


class ExtraSignals:
    """`mid + amp * sin(w t + phase)` per tag, parameters drawn from the machine's seed."""

    def __init__(self, specs: tuple[TagSpec, ...], seed: int):
        rng = random.Random(f"{seed}:extra")  # its own stream: the profile's values do not depend on --tags
        self._names = [spec.path for spec in specs]
        self._params = [
            (
                rng.uniform(20.0, 80.0),
                rng.uniform(2.0, 18.0),
                2 * math.pi / rng.uniform(5.0, 120.0),
                rng.uniform(0, 6.3),
            )
            for _ in specs
        ]
        self._t = 0.0

    def step(self, dt: float, out: dict[str, Value]) -> None:
        self._t += dt
        t = self._t
        sin = math.sin
        for name, (mid, amp, omega, phase) in zip(self._names, self._params, strict=True):
            out[name] = mid + amp * sin(omega * t + phase)
