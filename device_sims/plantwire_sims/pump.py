"""A centrifugal pump on a pipe system: affinity laws, pump curve against system curve, bearing wear."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import ClassVar

from plantwire_sims.model import (
    AMPERE,
    BAR,
    M3H,
    MM_S,
    PERCENT,
    ArgumentSpec,
    MethodOutcome,
    MethodRefusal,
    MethodSpec,
    RandomWalk,
    TagSpec,
    Value,
    approach,
    clamp,
)

RUNNING = "RUNNING"
STOPPED = "STOPPED"
MODES = {0: STOPPED, 1: RUNNING}  # SetMode's Mode argument

SHUTOFF_HEAD = 62.0  # m at full speed and zero flow
STATIC_HEAD = 12.0  # m the system needs before any flow starts
PUMP_K = 0.0016  # m/(m3/h)^2, the pump curve's droop
SYSTEM_C = 0.0019  # m/(m3/h)^2, pipe friction at nominal valve opening
SUCTION_BAR = 0.4
SPEED_RAMP = 0.25  # fraction of full speed per second
VOLTAGE = 400.0
MOTOR_PF_EFF = 0.87 * 0.94
MAGNETISING_A = 6.5
WEAR_RATE = 0.004  # % per second at full speed, speeding up as the bearing degrades

SPECS = (
    TagSpec(
        "Hydraulics/Flow",
        "Double",
        "Volumetric flow at the discharge",
        0.0,
        M3H,
        (0.0, 200.0),
        resolution=0.01,
    ),
    TagSpec(
        "Hydraulics/DischargePressure",
        "Double",
        "Pressure at the discharge flange",
        SUCTION_BAR,
        BAR,
        (0.0, 10.0),
        resolution=0.001,
    ),
    TagSpec("Motor/Current", "Double", "Motor phase current", 0.0, AMPERE, (0.0, 80.0), resolution=0.01),
    TagSpec(
        "Motor/SpeedSetpoint",
        "Double",
        "Drive speed setpoint in percent of rated speed; the drive ramps toward it",
        85.0,
        PERCENT,
        (0.0, 100.0),
        writable=True,
    ),
    TagSpec(
        "Condition/VibrationRMS",
        "Double",
        "Bearing housing vibration velocity, RMS",
        0.0,
        MM_S,
        (0.0, 25.0),
        resolution=0.001,
    ),
    TagSpec(
        "Condition/BearingWear",
        "Double",
        "Estimated bearing wear since the last maintenance (Reset)",
        0.0,
        PERCENT,
        (0.0, 100.0),
        resolution=0.0001,
    ),
    TagSpec("Status/State", "String", "Pump state: RUNNING or STOPPED", RUNNING),
)


class PumpModel:
    """Speed sets the pump curve (head ~ n^2); flow meets the system curve; current follows power."""

    profile: ClassVar[str] = "pump"
    specs: ClassVar[tuple[TagSpec, ...]] = SPECS

    def __init__(self, rng: random.Random):
        self._rng = rng
        self.state = RUNNING
        self.speed = 0.0  # fraction of rated speed
        self.wear = rng.uniform(0.0, 30.0)
        self._valve = RandomWalk(rng, sigma=0.01, low=-0.15, high=0.25)

    def methods(self) -> tuple[MethodSpec, ...]:
        return (
            MethodSpec("Start", "Start the pump", self.start),
            MethodSpec("Stop", "Stop: the drive ramps down", self.stop),
            MethodSpec("Reset", "Reset: records bearing maintenance", self.reset),
            MethodSpec(
                "SetMode",
                "Run (1) or stop (0) the pump; answers the mode it was in",
                self.set_mode,
                (ArgumentSpec("Mode", "Int32", "1 = RUNNING, 0 = STOPPED"),),
                (ArgumentSpec("PreviousMode", "Int32", "The mode before the call"),),
            ),
        )

    def start(self) -> MethodOutcome:
        self.state = RUNNING
        return ()

    def stop(self) -> MethodOutcome:
        self.state = STOPPED
        return ()

    def reset(self) -> MethodOutcome:
        """Maintenance: the bearing is replaced."""
        self.wear = 0.0
        return ()

    def set_mode(self, mode: int) -> MethodOutcome:
        if mode not in MODES:
            return MethodRefusal(f"mode {mode} is not 0 (STOPPED) or 1 (RUNNING)", "BadOutOfRange")
        previous = next(number for number, state in MODES.items() if state == self.state)
        self.state = MODES[mode]
        return (previous,)

    def step(self, dt: float, inputs: Mapping[str, Value]) -> dict[str, Value]:
        rng = self._rng
        target = clamp(float(inputs["Motor/SpeedSetpoint"]), 0.0, 100.0) / 100.0
        if self.state != RUNNING:
            target = 0.0
        self.speed = approach(self.speed, target, SPEED_RAMP * dt)
        n = self.speed
        system_c = SYSTEM_C * (1.0 + self._valve.step(dt))
        lift = SHUTOFF_HEAD * n * n - STATIC_HEAD
        flow = math.sqrt(lift / (PUMP_K + system_c)) if lift > 0 else 0.0
        head = max(SHUTOFF_HEAD * n * n - PUMP_K * flow * flow, STATIC_HEAD)  # check valve holds static head
        hydraulic_kw = flow * head / 367.0
        efficiency = 0.74 - 0.0008 * self.wear
        shaft_kw = hydraulic_kw / efficiency + 0.6 * n**3
        current = 0.0
        if n > 0.0:
            current = MAGNETISING_A + shaft_kw * 1000.0 / (math.sqrt(3) * VOLTAGE * MOTOR_PF_EFF)
            current *= 1.0 + rng.gauss(0.0, 0.004)
        self.wear = min(100.0, self.wear + dt * WEAR_RATE * n * n * (1.0 + self.wear / 50.0))
        vibration = 0.03 + 1.1 * n * n + 9.0 * (self.wear / 100.0) ** 1.6 * n
        return {
            "Hydraulics/Flow": flow * (1.0 + rng.gauss(0.0, 0.005)),
            "Hydraulics/DischargePressure": SUCTION_BAR + head / 10.2 + rng.gauss(0.0, 0.005),
            "Motor/Current": current,
            "Condition/VibrationRMS": max(0.0, vibration * (1.0 + rng.gauss(0.0, 0.04))),
            "Condition/BearingWear": self.wear,
            "Status/State": self.state,
        }
