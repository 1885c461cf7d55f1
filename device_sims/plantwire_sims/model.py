"""What a simulated machine is made of: typed tag specs, and the physics model each profile implements."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

Value = float | int | str
ValueType = Literal["Double", "UInt32", "String"]


@dataclass(frozen=True, slots=True)
class Unit:
    """An engineering unit as OPC UA's EUInformation carries it (UNECE common code -> UnitId)."""

    text: str
    code: str
    name: str

    @property
    def unit_id(self) -> int:
        """UnitId as OPC UA Part 8 defines it: the UNECE code's ASCII bytes packed into an integer."""
        value = 0
        for char in self.code:
            value = (value << 8) | ord(char)
        return value


RPM = Unit("rpm", "RPM", "revolutions per minute")
PERCENT = Unit("%", "P1", "percent")
MM = Unit("mm", "MMT", "millimetre")
DEGC = Unit("degC", "CEL", "degree Celsius")
M3H = Unit("m3/h", "MQH", "cubic metre per hour")
BAR = Unit("bar", "BAR", "bar")
AMPERE = Unit("A", "AMP", "ampere")
MM_S = Unit("mm/s", "C16", "millimetre per second")
KW = Unit("kW", "KWT", "kilowatt")
KWH = Unit("kWh", "KWH", "kilowatt hour")
ONE = Unit("1", "C62", "one (dimensionless)")


@dataclass(frozen=True, slots=True)
class TagSpec:
    """One variable of a machine. `path` is the tag name: browse names below the machine, joined by '/'."""

    path: str
    vtype: ValueType
    description: str
    initial: Value
    unit: Unit | None = None
    eu_range: tuple[float, float] | None = None
    writable: bool = False

    @property
    def folder(self) -> str:
        return self.path.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]


MethodResult = str | None
"""None when a method call succeeded, otherwise why the machine refused it."""


class Model(Protocol):
    """A profile's physics. `step` advances simulated time by `dt` seconds and returns every
    non-writable tag's current value; writable setpoints come in through `inputs` and are never returned,
    so a client's write is never overwritten by the simulator."""

    profile: ClassVar[str]
    specs: ClassVar[tuple[TagSpec, ...]]

    def step(self, dt: float, inputs: Mapping[str, Value]) -> dict[str, Value]: ...

    def methods(self) -> dict[str, Callable[[], MethodResult]]: ...


def approach(current: float, target: float, max_delta: float) -> float:
    """Move toward `target` by at most `max_delta`: how ramps (spindle, pump speed) behave."""
    if current < target:
        return min(current + max_delta, target)
    return max(current - max_delta, target)


def lag(current: float, target: float, dt: float, tau: float) -> float:
    """First-order lag with time constant `tau`, exact for a constant target over `dt`."""
    return target + (current - target) * math.exp(-dt / tau)


def clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


class RandomWalk:
    """A bounded, mean-reverting random walk: slow drifts like valve demand or plant load."""

    def __init__(self, rng: random.Random, sigma: float, low: float, high: float, revert: float = 0.01):
        self._rng = rng
        self._sigma = sigma
        self._low = low
        self._high = high
        self._revert = revert
        self.value = (low + high) / 2

    def step(self, dt: float) -> float:
        mid = (self._low + self._high) / 2
        self.value += (mid - self.value) * self._revert * dt + self._rng.gauss(0.0, self._sigma) * math.sqrt(
            dt
        )
        self.value = clamp(self.value, self._low, self._high)
        return self.value
