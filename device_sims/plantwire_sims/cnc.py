"""A CNC machining centre: batches of parts per program, a spindle, three axes, heat and alarms."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from plantwire_sims.model import (
    DEGC,
    MM,
    PERCENT,
    RPM,
    ArgumentSpec,
    MethodOutcome,
    MethodRefusal,
    MethodSpec,
    TagSpec,
    Value,
    approach,
    clamp,
    lag,
)

RUNNING = "RUNNING"
IDLE = "IDLE"
SETUP = "SETUP"
ALARM = "ALARM"

MAX_RPM = 12_000.0
SPINDLE_ACCEL = 1_500.0  # rpm/s
RAPID_FEED = 250.0  # mm/s, axes moving home between parts
HOME = (0.0, 0.0, 100.0)
LOAD_UNLOAD_S = 5.0  # end of each cycle: spindle off, part swapped
AMBIENT = 24.0
THERMAL_TAU = 180.0  # s
MEAN_S_BETWEEN_ALARMS = 900.0
FEED_RANGE = (10.0, 150.0)  # % feed override LoadProgram accepts


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    cycle_s: float
    centre: tuple[float, float]
    span: tuple[float, float]
    depth: float
    cut_load: float  # % spindle load while cutting at full engagement


PROGRAMS = (
    Program("O1001-FLANGE", 42.0, (150.0, 100.0), (90.0, 60.0), 12.0, 48.0),
    Program("O1002-SHAFT", 65.0, (250.0, 60.0), (180.0, 20.0), 25.0, 62.0),
    Program("O2040-HOUSING", 95.0, (200.0, 150.0), (120.0, 110.0), 40.0, 71.0),
    Program("O3310-BRACKET", 28.0, (120.0, 80.0), (60.0, 40.0), 8.0, 35.0),
)

SPECS = (
    TagSpec("Spindle/Speed", "Double", "Measured spindle speed", 0.0, RPM, (0.0, MAX_RPM), resolution=0.1),
    TagSpec(
        "Spindle/Load",
        "Double",
        "Spindle motor load, percent of rated torque",
        0.0,
        PERCENT,
        (0.0, 100.0),
        resolution=0.1,
    ),
    TagSpec(
        "Spindle/SpeedSetpoint",
        "Double",
        "Commanded spindle speed while cutting; the spindle ramps toward it",
        8_000.0,
        RPM,
        (0.0, MAX_RPM),
        writable=True,
    ),
    TagSpec("Axes/X", "Double", "X axis machine position", HOME[0], MM, (0.0, 500.0), resolution=0.001),
    TagSpec("Axes/Y", "Double", "Y axis machine position", HOME[1], MM, (0.0, 300.0), resolution=0.001),
    TagSpec(
        "Axes/Z",
        "Double",
        "Z axis machine position (negative is into the part)",
        HOME[2],
        MM,
        (-60.0, 150.0),
        resolution=0.001,
    ),
    TagSpec(
        "Thermal/SpindleTemperature",
        "Double",
        "Spindle bearing temperature",
        AMBIENT,
        DEGC,
        (0.0, 120.0),
        resolution=0.01,
    ),
    TagSpec("Production/PartCount", "UInt32", "Parts finished since the counter was installed", 0),
    TagSpec("Production/RejectCount", "UInt32", "Finished parts that failed in-process gauging", 0),
    TagSpec("Status/State", "String", "Machine state: RUNNING, IDLE, SETUP or ALARM", RUNNING),
    TagSpec("Status/Program", "String", "Active part program", PROGRAMS[0].name),
)


class CncModel:
    """Runs batches: RUNNING makes parts, SETUP switches programs, ALARM stops the spindle for a while."""

    profile: ClassVar[str] = "cnc"
    specs: ClassVar[tuple[TagSpec, ...]] = SPECS

    def __init__(self, rng: random.Random):
        self._rng = rng
        self._reject_ratio = rng.uniform(0.01, 0.04)
        self._program_index = rng.randrange(len(PROGRAMS))
        self._program = PROGRAMS[self._program_index]
        self._parts_left = rng.randint(4, 12)
        self.state = RUNNING
        self._cycle_elapsed = 0.0
        self._timer = 0.0  # time left in SETUP or ALARM
        self.parts = rng.randint(10_000, 90_000)
        self.rejects = int(self.parts * self._reject_ratio)
        self.speed = 0.0
        self._temperature = AMBIENT + rng.uniform(0.0, 4.0)
        self._axes = list(HOME)

    def methods(self) -> tuple[MethodSpec, ...]:
        return (
            MethodSpec("Start", "Start production (refused while in ALARM)", self.start),
            MethodSpec("Stop", "Stop: the machine goes idle and its drive ramps down", self.stop),
            MethodSpec("Reset", "Reset: clears an alarm", self.reset),
            MethodSpec(
                "LoadProgram",
                "Load a part program with a feed override and start a new batch with it",
                self.load_program,
                (
                    ArgumentSpec("ProgramName", "String", f"One of {', '.join(p.name for p in PROGRAMS)}"),
                    ArgumentSpec("Feed", "Double", "Feed override in percent, 10 to 150"),
                ),
                (ArgumentSpec("CycleTime", "Double", "Expected seconds per part at that feed"),),
            ),
        )

    def start(self) -> MethodOutcome:
        if self.state == ALARM:
            return MethodRefusal("the machine is in ALARM: call Reset first")
        if self.state == IDLE:
            self.state = RUNNING if self._parts_left > 0 else SETUP
        return ()

    def stop(self) -> MethodOutcome:
        if self.state in (RUNNING, SETUP):
            self.state = IDLE
        return ()

    def reset(self) -> MethodOutcome:
        if self.state == ALARM:
            self.state = IDLE
            self._timer = 0.0
        return ()

    def load_program(self, name: str, feed: float) -> MethodOutcome:
        program = next((p for p in PROGRAMS if p.name == name), None)
        if program is None:
            return MethodRefusal(f"unknown program {name[:40]!r}", "BadInvalidArgument")
        if not FEED_RANGE[0] <= feed <= FEED_RANGE[1]:
            return MethodRefusal(f"feed {feed} is outside {FEED_RANGE}", "BadOutOfRange")
        if self.state == ALARM:
            return MethodRefusal("the machine is in ALARM: call Reset first")
        cycle_s = LOAD_UNLOAD_S + (program.cycle_s - LOAD_UNLOAD_S) * 100.0 / feed
        self._program_index = PROGRAMS.index(program)
        self._program = dataclasses.replace(program, cycle_s=cycle_s)
        self._parts_left = self._rng.randint(4, 12)
        self._cycle_elapsed = 0.0
        if self.state == SETUP:
            self.state = RUNNING
        return (cycle_s,)

    def step(self, dt: float, inputs: Mapping[str, Value]) -> dict[str, Value]:
        setpoint = clamp(float(inputs["Spindle/SpeedSetpoint"]), 0.0, MAX_RPM)
        self._advance_state(dt)
        program = self._program
        cutting_time = program.cycle_s - LOAD_UNLOAD_S
        cutting = self.state == RUNNING and self._cycle_elapsed < cutting_time
        self.speed = approach(self.speed, setpoint if cutting else 0.0, SPINDLE_ACCEL * dt)

        if cutting:
            u = self._cycle_elapsed / cutting_time
            cx, cy = program.centre
            ax, ay = program.span
            plunge = min(1.0, u * 12.0, (1.0 - u) * 12.0)
            target = (
                cx + ax * math.sin(2 * math.pi * u),
                cy + ay * math.sin(4 * math.pi * u + 0.7),
                5.0 - (program.depth + 5.0) * plunge,
            )
            self._axes = list(target)
            engagement = max(0.0, -self._axes[2]) / program.depth
        else:
            step = RAPID_FEED * dt
            self._axes = [approach(a, h, step) for a, h in zip(self._axes, HOME, strict=True)]
            engagement = 0.0

        rng = self._rng
        spinning = self.speed > 1.0
        load = 0.0
        speed_out = 0.0
        if spinning:
            speed_out = self.speed * (1.0 + rng.gauss(0.0, 0.0015))
            load = 4.0 + 6.0 * self.speed / MAX_RPM + program.cut_load * engagement + rng.gauss(0.0, 1.2)
        load = clamp(load, 0.0, 100.0)
        heat_target = AMBIENT + 0.35 * load + 0.0012 * self.speed
        self._temperature = lag(self._temperature, heat_target, dt, THERMAL_TAU)
        return {
            "Spindle/Speed": speed_out,
            "Spindle/Load": load,
            "Axes/X": self._axes[0],
            "Axes/Y": self._axes[1],
            "Axes/Z": self._axes[2],
            "Thermal/SpindleTemperature": self._temperature + rng.gauss(0.0, 0.03),
            "Production/PartCount": self.parts,
            "Production/RejectCount": self.rejects,
            "Status/State": self.state,
            "Status/Program": program.name,
        }

    def _advance_state(self, dt: float) -> None:
        rng = self._rng
        if self.state == RUNNING:
            if rng.random() < dt / MEAN_S_BETWEEN_ALARMS:
                self.state = ALARM
                self._timer = rng.uniform(20.0, 60.0)
                return
            self._cycle_elapsed += dt
            if self._cycle_elapsed >= self._program.cycle_s:
                self._cycle_elapsed -= self._program.cycle_s
                self.parts += 1
                if rng.random() < self._reject_ratio:
                    self.rejects += 1
                self._parts_left -= 1
                if self._parts_left <= 0:
                    self.state = SETUP
                    self._timer = rng.uniform(20.0, 45.0)
        elif self.state == SETUP:
            self._timer -= dt
            if self._timer <= 0.0:
                self._program_index = (self._program_index + 1) % len(PROGRAMS)
                self._program = PROGRAMS[self._program_index]
                self._parts_left = rng.randint(4, 12)
                self._cycle_elapsed = 0.0
                self.state = RUNNING
        elif self.state == ALARM:
            self._timer -= dt
            if self._timer <= 0.0:  # the operator acknowledged it at the panel
                self.state = RUNNING
