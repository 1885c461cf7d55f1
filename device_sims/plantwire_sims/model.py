"""What a simulated machine is made of: typed tag specs, and the physics model each profile implements."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Literal, Protocol

Value = float | int | str
ValueType = Literal["Double", "UInt32", "String"]
ArgumentType = Literal["Double", "UInt32", "Int32", "String"]


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
    resolution: float | None = None
    """Smallest step of a Double the sensor reports (0.01 for m3/h to two decimals); the simulator
    rounds every value it writes to it, so a reader never sees 93.90299999999999."""

    def __post_init__(self) -> None:
        if self.resolution is not None and not (self.vtype == "Double" and self.resolution > 0):
            raise ValueError(f"{self.path}: a resolution needs a Double tag and a step above 0")

    @property
    def folder(self) -> str:
        return self.path.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]


def quantizer(resolution: float) -> Callable[[float], float]:
    """Round to a multiple of `resolution`, giving the shortest float for it (93.903, not 93.90299999999999).

    The step count is rounded first, then the product is rounded to the step's decimal places, which
    removes the binary error that multiplying by e.g. 0.001 leaves.
    """
    decimals = max(0, -Decimal(repr(resolution)).normalize().as_tuple().exponent)  # type: ignore[operator]

    def quantize(value: float) -> float:
        return round(round(value / resolution) * resolution, decimals)

    return quantize


@dataclass(frozen=True, slots=True)
class ArgumentSpec:
    """One input or output argument of a method, declared in its InputArguments/OutputArguments."""

    name: str
    vtype: ArgumentType
    description: str


@dataclass(frozen=True, slots=True)
class MethodRefusal:
    """Why the machine refused a call, and the OPC UA status the caller gets (a `ua.StatusCodes` name)."""

    reason: str
    status: str = "BadInvalidState"


MethodOutcome = tuple[Value, ...] | MethodRefusal
"""The output arguments' values, in declaration order, or a refusal."""


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """A method on the machine object. `call` gets the input values (types already checked)."""

    name: str
    description: str
    call: Callable[..., MethodOutcome]
    inputs: tuple[ArgumentSpec, ...] = ()
    outputs: tuple[ArgumentSpec, ...] = ()


class Model(Protocol):
    """A profile's physics. `step` advances simulated time by `dt` seconds and returns every
    non-writable tag's current value; writable setpoints come in through `inputs` and are never returned,
    so a client's write is never overwritten by the simulator."""

    profile: ClassVar[str]
    specs: ClassVar[tuple[TagSpec, ...]]

    def step(self, dt: float, inputs: Mapping[str, Value]) -> dict[str, Value]: ...

    def methods(self) -> tuple[MethodSpec, ...]: ...


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
