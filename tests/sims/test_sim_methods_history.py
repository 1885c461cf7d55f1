"""Methods with arguments, values at each sensor's resolution, and HistoryRead of the recent values."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import orjson
from asyncua import Client, ua
from sim_client import node, read_until, wait_for

from plantwire_sims.cnc import PROGRAMS
from plantwire_sims.machine import SimMachine
from plantwire_sims.value_writer import datetime_to_us, us_to_datetime


async def call(client: Client, machine: SimMachine, method: str, *args: ua.Variant) -> ua.CallMethodResult:
    request = ua.CallMethodRequest()
    request.ObjectId = ua.NodeId.from_string(machine.root_node_id)
    request.MethodId = ua.NodeId.from_string(node(machine, method))
    request.InputArguments = list(args)
    (result,) = await client.uaclient.call([request])
    return result


async def test_load_program_with_arguments_declared_checked_and_applied(port: int) -> None:
    async with (
        asyncio.timeout(60),
        SimMachine("cnc", "cnc-1", port, rate_hz=20) as machine,
        Client(machine.endpoint) as client,
    ):
        method = client.get_node(node(machine, "LoadProgram"))
        inputs = await (await method.get_child("0:InputArguments")).read_value()
        outputs = await (await method.get_child("0:OutputArguments")).read_value()
        assert [(a.Name, a.DataType) for a in inputs] == [
            ("ProgramName", ua.NodeId(ua.ObjectIds.String)),
            ("Feed", ua.NodeId(ua.ObjectIds.Double)),
        ]
        assert [(a.Name, a.DataType) for a in outputs] == [("CycleTime", ua.NodeId(ua.ObjectIds.Double))]

        current = await client.get_node(node(machine, "Status/Program")).read_value()
        target = next(p for p in PROGRAMS if p.name != current)
        result = await call(
            client,
            machine,
            "LoadProgram",
            ua.Variant(target.name, ua.VariantType.String),
            ua.Variant(50.0, ua.VariantType.Double),
        )
        assert result.StatusCode.is_good()
        (cycle,) = result.OutputArguments
        assert cycle.VariantType == ua.VariantType.Double and cycle.Value > target.cycle_s  # half the feed
        await read_until(client, node(machine, "Status/Program"), lambda v: v == target.name)

        wrong_type = await call(
            client,
            machine,
            "LoadProgram",
            ua.Variant(target.name, ua.VariantType.String),
            ua.Variant("fast", ua.VariantType.String),
        )
        assert wrong_type.StatusCode.value == ua.StatusCodes.BadInvalidArgument
        assert [r.value for r in wrong_type.InputArgumentResults] == [
            ua.StatusCodes.Good,
            ua.StatusCodes.BadTypeMismatch,
        ]
        missing = await call(client, machine, "LoadProgram", ua.Variant(target.name, ua.VariantType.String))
        assert missing.StatusCode.value == ua.StatusCodes.BadArgumentsMissing
        unknown = await call(
            client,
            machine,
            "LoadProgram",
            ua.Variant("O9999-NOPE", ua.VariantType.String),
            ua.Variant(100.0, ua.VariantType.Double),
        )
        assert unknown.StatusCode.value == ua.StatusCodes.BadInvalidArgument
        assert await client.get_node(node(machine, "Status/Program")).read_value() == target.name


async def test_pump_set_mode(port: int) -> None:
    async with (
        asyncio.timeout(60),
        SimMachine("pump", "pump-1", port, rate_hz=20) as machine,
        Client(machine.endpoint) as client,
    ):
        root = client.get_node(machine.root_node_id)
        previous = await root.call_method("2:SetMode", ua.Variant(0, ua.VariantType.Int32))
        assert previous == 1
        await read_until(client, node(machine, "Status/State"), lambda v: v == "STOPPED")
        out_of_range = await call(client, machine, "SetMode", ua.Variant(7, ua.VariantType.Int32))
        assert out_of_range.StatusCode.value == ua.StatusCodes.BadOutOfRange
        as_double = await call(client, machine, "SetMode", ua.Variant(1.0, ua.VariantType.Double))
        assert as_double.StatusCode.value == ua.StatusCodes.BadInvalidArgument


async def test_values_are_at_resolution_and_recorded_exactly_as_written(tmp_path: Path, port: int) -> None:
    record = tmp_path / "values.jsonl"
    async with asyncio.timeout(60):
        async with SimMachine(
            "pump", "pump-1", port, rate_hz=50, extra_tags=3, record_file=record
        ) as machine:
            async with Client(machine.endpoint) as client:
                await wait_for(lambda: machine.ticks >= 30, within=20)
                machine.pause()
                flow = await client.get_node(node(machine, "Hydraulics/Flow")).read_value()
    lines = [orjson.loads(line) for line in record.read_bytes().splitlines()]
    resolution = {spec.path: spec.resolution for spec in machine.specs}
    decimals = {0.01: 2, 0.001: 3, 0.0001: 4}
    for row in lines:
        step = resolution[row["tag"]]
        if step is not None and isinstance(row["v"], float):
            assert row["v"] == round(row["v"], decimals[step]), row  # e.g. 93.9, never 93.90299999999999
            assert len(repr(row["v"]).split(".")[1]) <= decimals[step], row
    flows = [row["v"] for row in lines if row["tag"] == "Hydraulics/Flow"]
    assert flows[-1] == flow  # what a client reads is exactly what was recorded


async def test_history_read_returns_the_recent_values_exactly_as_recorded(port: int) -> None:
    async with asyncio.timeout(60):
        async with SimMachine("meter", "meter-1", port, rate_hz=50, record=True, history_s=60) as machine:
            async with Client(machine.endpoint) as client:
                await wait_for(lambda: machine.ticks >= 40, within=20)
                machine.pause()
                recorded = [(ts, v) for tag, ts, v in machine.produced if tag == "Power/Total"]
                variable = client.get_node(node(machine, "Power/Total"))
                assert await variable.read_attribute(ua.AttributeIds.Historizing) is not None
                assert (await variable.read_attribute(ua.AttributeIds.Historizing)).Value.Value is True
                start = us_to_datetime(recorded[0][0])
                end = us_to_datetime(recorded[-1][0])
                history = await variable.read_raw_history(start, end)
                middle = us_to_datetime(recorded[len(recorded) // 2][0])
                tail = await variable.read_raw_history(middle, end, numvalues=5)
    assert [(datetime_to_us(dv.SourceTimestamp), dv.Value.Value) for dv in history] == recorded
    assert [datetime_to_us(dv.SourceTimestamp) for dv in tail] == [ts for ts, _ in recorded][
        len(recorded) // 2 : len(recorded) // 2 + 5
    ]
    assert machine.history_s == 60 and timedelta(seconds=machine.history_s) > end - start
