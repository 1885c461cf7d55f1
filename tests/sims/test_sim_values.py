"""A subscriber receives exactly what the simulator recorded; setpoints, methods and counters behave."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from asyncua import Client, ua
from sim_client import Collector, node, read_until, subscribe_all, wait_for

from plantwire_sims.cnc import CncModel
from plantwire_sims.machine import SimMachine


def by_tag(rows: Sequence[tuple[str, int, Any]]) -> dict[str, list[tuple[int, Any]]]:
    out: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for tag, ts, value in rows:
        out[tag].append((ts, value))
    return out


async def test_subscriber_receives_every_recorded_value_with_its_source_timestamp(port: int) -> None:
    async with asyncio.timeout(30):
        async with SimMachine("cnc", "cnc-1", port, rate_hz=20, extra_tags=20, record=True) as machine:
            async with Client(machine.endpoint) as client:
                collector = Collector(machine)
                await subscribe_all(client, machine, collector)
                start = machine.ticks
                await wait_for(lambda: machine.ticks >= start + 20)
                machine.pause()
                produced = by_tag(machine.produced)
                last = {tag: rows[-1] for tag, rows in produced.items()}
                await wait_for(lambda: all(last[t] in by_tag(collector.received)[t] for t in last))

    received = by_tag(collector.received)
    assert set(received) == set(machine.tags)
    for tag, rows in received.items():
        # The first notification is the value current at subscribe time; from then on nothing is missing.
        first = produced[tag].index(rows[0])
        assert rows == produced[tag][first:], tag
    changing = [tag for tag in machine.tags if len(received[tag]) > 10]
    assert "Spindle/Speed" in changing and "Extra/T0001" in changing
    timestamps = [ts for ts, _ in produced["Extra/T0001"]]
    assert timestamps == sorted(set(timestamps))


async def test_setpoint_write_steers_spindle_and_is_not_overwritten(port: int) -> None:
    async with asyncio.timeout(30):
        async with SimMachine("cnc", "cnc-1", port, rate_hz=20, record=True) as machine:
            async with Client(machine.endpoint) as client:
                speed = node(machine, "Spindle/Speed")
                setpoint = client.get_node(node(machine, "Spindle/SpeedSetpoint"))
                before = await read_until(client, speed, lambda v: v > 1_000.0)  # ramping up toward 8000
                await setpoint.write_value(ua.Variant(600.0, ua.VariantType.Double))
                await read_until(client, speed, lambda v: abs(v - 600.0) < 6.0)
                ticks = machine.ticks
                await wait_for(lambda: machine.ticks >= ticks + 5)
                assert await setpoint.read_value() == 600.0
                assert abs(await client.get_node(speed).read_value() - 600.0) < 6.0
    assert before > 1_000.0
    writes = [row for row in machine.produced if row[0] == "Spindle/SpeedSetpoint"]
    assert [value for _, _, value in writes] == [8_000.0, 600.0]  # the initial value and the client's
    speeds = [float(value) for tag, _, value in machine.produced if tag == "Spindle/Speed"]
    assert max(speeds) > 1_000.0 and abs(speeds[-1] - 600.0) < 6.0


async def test_cnc_stop_start_and_reset_an_alarm(port: int) -> None:
    async with asyncio.timeout(30):
        async with (
            SimMachine("cnc", "cnc-1", port, rate_hz=20) as machine,
            Client(machine.endpoint) as client,
        ):
            root = client.get_node(machine.root_node_id)
            state = node(machine, "Status/State")
            assert await client.get_node(state).read_value() == "RUNNING"
            await read_until(client, node(machine, "Spindle/Speed"), lambda v: v > 500.0)

            await root.call_method("2:Stop")
            await read_until(client, state, lambda v: v == "IDLE")
            await read_until(client, node(machine, "Spindle/Speed"), lambda v: v == 0.0, within=10)

            await root.call_method("2:Start")
            await read_until(client, state, lambda v: v == "RUNNING")

            # Fast-forward the physics (tick loop held) until its seeded alarm comes.
            model = machine.model
            assert isinstance(model, CncModel)
            machine.pause()
            while model.state != "ALARM":
                model.step(1.0, {"Spindle/SpeedSetpoint": 8_000.0})
            machine.resume()
            await read_until(client, state, lambda v: v == "ALARM")
            try:
                await root.call_method("2:Start")
            except ua.UaStatusCodeError as err:
                assert err.code == ua.StatusCodes.BadInvalidState
            else:
                raise AssertionError("Start was accepted during an alarm")
            await root.call_method("2:Reset")
            await read_until(client, state, lambda v: v == "IDLE")


async def test_pump_stop_and_maintenance_reset(port: int) -> None:
    async with asyncio.timeout(30):
        async with (
            SimMachine("pump", "pump-1", port, rate_hz=20) as machine,
            Client(machine.endpoint) as client,
        ):
            root = client.get_node(machine.root_node_id)
            wear = node(machine, "Condition/BearingWear")
            await read_until(client, node(machine, "Hydraulics/Flow"), lambda v: v > 50.0)
            worn = await client.get_node(wear).read_value()
            await read_until(client, wear, lambda v: v > worn)  # wear grows while running

            await root.call_method("2:Reset")
            await read_until(client, wear, lambda v: v < 0.01)

            await root.call_method("2:Stop")
            await read_until(client, node(machine, "Status/State"), lambda v: v == "STOPPED")
            await read_until(client, node(machine, "Hydraulics/Flow"), lambda v: v == 0.0, within=10)
            await read_until(client, node(machine, "Motor/Current"), lambda v: v == 0.0, within=10)


async def test_meter_energy_only_grows_and_total_is_the_phase_sum(port: int) -> None:
    async with asyncio.timeout(30):
        async with SimMachine("meter", "meter-1", port, rate_hz=50, record=True) as machine:
            async with Client(machine.endpoint) as client:
                collector = Collector(machine)
                await subscribe_all(client, machine, collector)
                await wait_for(lambda: machine.ticks > 50)
                machine.pause()
                produced = by_tag(machine.produced)
                final = produced["Energy/Total"][-1]
                await wait_for(lambda: final in by_tag(collector.received)["Energy/Total"])
    energy = [value for _, value in produced["Energy/Total"]]
    assert len(energy) > 50
    assert all(b > a for a, b in pairwise(energy))
    seen = [value for _, value in by_tag(collector.received)["Energy/Total"]]
    assert seen == sorted(seen) and len(seen) > 10
    phases = {tag: dict(produced[tag]) for tag in ("Power/L1", "Power/L2", "Power/L3", "Power/Total")}
    for ts, total in phases["Power/Total"].items():
        assert abs(total - sum(phases[p][ts] for p in ("Power/L1", "Power/L2", "Power/L3"))) < 0.002
