"""The profiles' physics over simulated hours, without a server: plausible and internally consistent."""

from __future__ import annotations

import random
from itertools import pairwise

from plantwire_sims.cnc import PROGRAMS, CncModel
from plantwire_sims.extra import ExtraSignals, extra_specs
from plantwire_sims.pump import PumpModel


def test_cnc_makes_parts_changes_programs_and_recovers_from_alarms() -> None:
    model = CncModel(random.Random(11))
    inputs = {"Spindle/SpeedSetpoint": 9_000.0}
    rows = [model.step(0.5, inputs) for _ in range(20_000)]  # ~2.8 simulated hours
    parts = [int(r["Production/PartCount"]) for r in rows]
    rejects = [int(r["Production/RejectCount"]) for r in rows]
    states = [r["Status/State"] for r in rows]
    assert all(b >= a for a, b in pairwise(parts))
    assert all(b >= a for a, b in pairwise(rejects))
    made, rejected = parts[-1] - parts[0], rejects[-1] - rejects[0]
    assert made > 100 and 0 < rejected < made * 0.1
    assert {"RUNNING", "SETUP", "ALARM"} <= set(states) and "IDLE" not in states
    assert {r["Status/Program"] for r in rows} == {p.name for p in PROGRAMS}
    alarm_runs = "".join("A" if s == "ALARM" else "." for s in states).split(".")
    assert max(len(run) for run in alarm_runs) * 0.5 <= 61  # alarms clear by themselves
    speeds = [float(r["Spindle/Speed"]) for r in rows]
    assert max(speeds) <= 9_000 * 1.01 and min(speeds) == 0.0
    running_temps = [float(r["Thermal/SpindleTemperature"]) for r in rows[-2000:]]
    assert 24.0 < min(running_temps) and max(running_temps) < 80.0


def test_pump_flow_pressure_and_current_follow_speed() -> None:
    def settle(setpoint: float) -> dict[str, float | int | str]:
        model = PumpModel(random.Random(5))
        for _ in range(200):
            row = model.step(0.1, {"Motor/SpeedSetpoint": setpoint})
        return row

    low, high = settle(60.0), settle(100.0)
    for tag in ("Hydraulics/Flow", "Hydraulics/DischargePressure", "Motor/Current"):
        assert 0.0 < float(low[tag]) < float(high[tag]), tag
    assert settle(30.0)["Hydraulics/Flow"] == 0.0  # below the static head: no flow


def test_bearing_wear_raises_vibration() -> None:
    fresh, worn = PumpModel(random.Random(2)), PumpModel(random.Random(2))
    fresh.wear, worn.wear = 0.0, 80.0
    inputs = {"Motor/SpeedSetpoint": 100.0}
    fresh_rows = [fresh.step(0.1, inputs) for _ in range(300)][100:]
    worn_rows = [worn.step(0.1, inputs) for _ in range(300)][100:]

    def mean(rows: list[dict[str, float | int | str]]) -> float:
        return sum(float(r["Condition/VibrationRMS"]) for r in rows) / len(rows)

    assert mean(worn_rows) > mean(fresh_rows) * 2
    assert float(fresh_rows[-1]["Condition/BearingWear"]) > float(fresh_rows[0]["Condition/BearingWear"])


def test_extra_signals_are_deterministic_and_distinct() -> None:
    specs = extra_specs(50)
    assert specs[0].path == "Extra/T0001" and specs[-1].path == "Extra/T0050"
    a, b = ExtraSignals(specs, seed=3), ExtraSignals(specs, seed=3)
    out_a: dict[str, float | int | str] = {}
    out_b: dict[str, float | int | str] = {}
    a.step(0.5, out_a)
    b.step(0.5, out_b)
    assert out_a == out_b and len(set(out_a.values())) == 50
    assert all(0.0 <= float(v) <= 100.0 for v in out_a.values())
