"""The four shipped apps on replayed points, with answers worked out by hand in the comments."""

from __future__ import annotations

import asyncio

import pytest

from plantwire_platform.apps.manifest import ManifestError
from plantwire_platform.apps.replay import Replay, S, point
from plantwire_platform.builtin_apps.anomaly.app import VibrationAnomaly
from plantwire_platform.builtin_apps.energy.app import Energy
from plantwire_platform.builtin_apps.limit_alarms.app import LimitAlarms
from plantwire_platform.builtin_apps.oee.app import Oee

T0 = 1_700_000_000 * S // (3600 * S) * (3600 * S)  # an hour boundary, so windows start at T0


async def test_limit_alarm_needs_the_delay_raises_and_clears_with_hysteresis() -> None:
    config = {"limits": [{"device": "press-*", "tag": "Temp", "high": 80, "hysteresis": 5, "delay_s": 10}]}
    seq = [(0, 70), (10, 85), (15, 90), (20, 82), (30, 78), (40, 74), (50, 85), (55, 70), (70, 60)]
    async with asyncio.timeout(10), Replay(LimitAlarms, config) as replay:
        await replay.feed(point("press-1", "Temp", float(v), T0 + t * S) for t, v in seq)
        await replay.feed([point("press-1", "Other", 500.0, T0)])  # not in the manifest's reads
    # Over 80 from t=10; the delay of 10 s passes at t=20 (82 still over): raised at 20.
    # 78 is not below 80 - 5, 74 is: cleared at 40. The spike at 50 ends at 55, before its delay.
    (alarm,) = replay.alarms
    assert (alarm.device, alarm.tag, alarm.state) == ("press-1", "Temp", "cleared")
    assert (alarm.raised_at, alarm.cleared_at) == (T0 + 20 * S, T0 + 40 * S)
    assert "above high limit 80" in alarm.message


async def test_limit_alarm_low_side_and_bad_config() -> None:
    config = {"limits": [{"tag": "P", "low": 1.0, "hysteresis": 0.5}]}
    async with asyncio.timeout(10), Replay(LimitAlarms, config) as replay:
        await replay.feed(point("press-1", "P", v, T0 + i * S) for i, v in enumerate([2.0, 0.5, 1.4, 1.6]))
    # Below 1.0 at t=1 (no delay): raised; 1.4 is not above 1.5; 1.6 is: cleared at t=3.
    (alarm,) = replay.alarms
    assert (alarm.raised_at, alarm.cleared_at) == (T0 + 1 * S, T0 + 3 * S)
    with pytest.raises(ManifestError, match=r"limit_alarms.*config\.limits\.0"):
        Replay(LimitAlarms, {"limits": [{"tag": "P"}]})


async def test_oee_of_one_window_by_hand() -> None:
    d = "cnc-1"
    pts = [
        point(d, "Status/State", "RUNNING", T0),
        point(d, "Production/PartCount", 1000, T0),
        point(d, "Production/RejectCount", 10, T0),
        point(d, "Production/PartCount", 1005, T0 + 50 * S),
        point(d, "Production/RejectCount", 11, T0 + 55 * S),
        point(d, "Status/State", "IDLE", T0 + 60 * S),
        point(d, "Status/State", "RUNNING", T0 + 80 * S),
        point(d, "Production/PartCount", 1006, T0 + 105 * S),  # closes [T0, T0+100 s)
    ]
    async with asyncio.timeout(10), Replay(Oee, {"window_s": 100, "ideal_cycle_s": 10}) as replay:
        await replay.feed(pts)
    # Running 0-60 s and 80-100 s: 80 s of 100 -> availability 0.8. Parts 5, rejects 1:
    # performance 10 s x 5 / 80 s = 0.625, quality 4/5 = 0.8, OEE 0.8 x 0.625 x 0.8 = 0.4.
    got = {p.tag: p.value for p in replay.emitted if p.ts == T0}
    assert got["oee/Parts"] == 5 and got["oee/Rejects"] == 1
    assert got["oee/Availability"] == pytest.approx(0.8)
    assert got["oee/Performance"] == pytest.approx(0.625)
    assert got["oee/Quality"] == pytest.approx(0.8)
    assert got["oee/OEE"] == pytest.approx(0.4)
    assert all(p.device == d for p in replay.emitted)
    assert not [p for p in replay.emitted if p.ts != T0]  # the second window is still open


async def test_energy_per_period_splits_intervals_and_survives_a_reset() -> None:
    seq = [(0, 500.0), (50, 505.0), (90, 509.0), (110, 511.0), (150, 3.0), (200, 8.0), (250, 9.0)]
    async with asyncio.timeout(10), Replay(Energy, {"period_s": 100}) as replay:
        await replay.feed(point("meter-1", "Energy/Total", v, T0 + t * S) for t, v in seq)
    # Period 0: 5 + 4 + half of the 90-110 s step (2 kWh over 20 s, 10 s in each) = 10.
    # Period 1: the other 1 + 3 (register reset to 0, now reads 3) + 5 (150-200 s) = 9.
    # Period 2 is still open (the last reading is at 250 s).
    assert replay.derived("meter-1", "kWh") == [(T0, pytest.approx(10.0)), (T0 + 100 * S, pytest.approx(9.0))]
    assert replay.ctx.metrics["resets"] == 1


async def test_anomaly_raises_on_wear_clears_after_reset_and_relearns() -> None:
    config = {"learn_samples": 4, "warmup_samples": 0, "alpha": 0.5, "min_std_ratio": 0.1, "emit_every": 1}
    values = [1.0, 1.0, 1.0, 1.0, 1.6, 1.6, 1.0, 1.0, 0.5, 0.5, 0.5]
    async with asyncio.timeout(10), Replay(VibrationAnomaly, config) as replay:
        await replay.feed(
            point("pump-1", "Condition/VibrationRMS", v, T0 + i * S) for i, v in enumerate(values)
        )
    # Baseline 1.0, std 0 -> floor 0.1. EWMA: 1.3 (z 3), 1.45 (z 4.5 > 4: raised at i=5),
    # 1.225 (z 2.25, still active), 1.1125 (z 1.125 < 2: cleared at i=7), then 0.806, 0.653,
    # 0.577 (z -4.2 < -4: maintenance seen, baseline learnt again).
    (alarm,) = replay.alarms
    assert (alarm.raised_at, alarm.cleared_at) == (T0 + 5 * S, T0 + 7 * S)
    z = [v for _, v in replay.derived("pump-1", "ZScore")]
    assert z == pytest.approx([3.0, 4.5, 2.25, 1.125, -1.9375, -3.46875, -4.234375], abs=1e-3)
    # After relearning the next readings are baseline samples again: nothing emitted for them.
    async with asyncio.timeout(10):
        await replay.feed([point("pump-1", "Condition/VibrationRMS", 0.5, T0 + 20 * S)])
    assert len(replay.derived("pump-1", "ZScore")) == 7


async def test_anomaly_ignores_a_stopped_pump() -> None:
    config = {"learn_samples": 2, "warmup_samples": 1, "alpha": 1.0}
    async with asyncio.timeout(10), Replay(VibrationAnomaly, config) as replay:
        await replay.feed(
            [
                point("pump-1", "Condition/VibrationRMS", 1.0, T0),
                point("pump-1", "Condition/VibrationRMS", 1.0, T0 + S),
                point("pump-1", "Status/State", "STOPPED", T0 + 2 * S),
                point("pump-1", "Condition/VibrationRMS", 0.03, T0 + 3 * S),
                point("pump-1", "Status/State", "RUNNING", T0 + 4 * S),
                point("pump-1", "Condition/VibrationRMS", 9.0, T0 + 5 * S),  # warm-up, skipped
                point("pump-1", "Condition/VibrationRMS", 1.0, T0 + 6 * S),
            ]
        )
    assert replay.alarms == []
