"""Structures, typed method arguments and timestamp=server against an asyncua server built here.

The server defines its own structure type (ToolInfo, published as an OPC UA 1.04
DataTypeDefinition), so the gateway must load the server's definitions to decode it; its
methods declare named InputArguments the way asyncua servers do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asyncua import Server, ua
from asyncua.common.methods import uamethod
from asyncua.common.structures104 import new_struct, new_struct_field
from gwtest_support import Collector, gateway_running, gateway_settings, wait_for

from plantwire import wire
from plantwire.broker import MosquittoProcess, free_port
from plantwire_gateway.device_control import ControlError, DeviceControl
from plantwire_gateway.pki import Pki
from plantwire_gateway.server_profile import standard_node
from plantwire_gateway.settings import DeviceConfig
from plantwire_sims.asyncua_internals import init_server

NAMESPACE = "urn:plantwire:test:asyncua-data"
ROOT = f"nsu={NAMESPACE};s=cell"
TOOL = {"Name": "T12 end mill", "Length": 42.5, "Offsets": [0.1, -0.2], "Uses": 7}


def _arg(name: str, type_id: int, rank: int = -1) -> ua.Argument:
    return ua.Argument(Name=name, DataType=standard_node(type_id), ValueRank=rank)


@pytest.fixture
async def cell() -> AsyncIterator[str]:
    server = Server()
    await init_server(server)  # asyncua's init, its standard nodes copied (fast)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    server.set_endpoint(endpoint)
    idx = await server.register_namespace(NAMESPACE)
    fields = [
        new_struct_field("Name", ua.VariantType.String),
        new_struct_field("Length", ua.VariantType.Double),
        new_struct_field("Offsets", ua.VariantType.Double, array=True),
        new_struct_field("Uses", ua.VariantType.UInt32),
    ]
    tool_type, _ = await new_struct(server, idx, "ToolInfo", fields)
    await server.load_data_type_definitions()
    tool_cls = ua.extension_objects_by_datatype[tool_type.nodeid]
    obj = await server.nodes.objects.add_object(ua.NodeId("cell", idx), ua.QualifiedName("cell", idx))
    await obj.add_variable(ua.NodeId("cell.Tool", idx), "Tool", tool_cls(**TOOL), datatype=tool_type.nodeid)
    late = await obj.add_variable(ua.NodeId("cell.Late", idx), "Late", 0.0)

    @uamethod
    def load_program(parent: ua.NodeId, name: str, feed: float) -> tuple[ua.Variant, ua.Variant]:
        return ua.Variant(True, ua.VariantType.Boolean), ua.Variant(f"{name}:{feed}", ua.VariantType.String)

    @uamethod
    def mount(parent: ua.NodeId, tool: Any) -> float:
        return float(tool.Length + sum(tool.Offsets))

    await obj.add_method(
        ua.NodeId("cell.LoadProgram", idx),
        "LoadProgram",
        load_program,
        [_arg("ProgramName", ua.ObjectIds.String), _arg("Feed", ua.ObjectIds.Double)],
        [_arg("Accepted", ua.ObjectIds.Boolean), _arg("Echo", ua.ObjectIds.String)],
    )
    mount_arg = ua.Argument(Name="Tool", DataType=tool_type.nodeid, ValueRank=-1)
    await obj.add_method(
        ua.NodeId("cell.Mount", idx), "Mount", mount, [mount_arg], [_arg("Reach", ua.ObjectIds.Double)]
    )

    async def tick() -> None:
        n = 0
        while True:
            n += 1
            ahead = datetime.now(UTC) + timedelta(hours=1)
            dv = ua.DataValue(
                ua.Variant(float(n), ua.VariantType.Double),
                SourceTimestamp=ahead,
                ServerTimestamp=datetime.now(UTC),
            )
            await server.write_attribute_value(late.nodeid, dv)
            await asyncio.sleep(0.1)

    async with server:
        task = asyncio.create_task(tick())
        try:
            yield endpoint
        finally:
            task.cancel()


async def test_structures_decode_to_objects_and_server_time_fixes_a_clock_ahead(
    cell: str, mosquitto: MosquittoProcess, collector: Collector, tmp_path: Path, unique_id: str
) -> None:
    dev = f"{unique_id}-cell"
    config = DeviceConfig(id=dev, endpoint=cell, root=ROOT, publishing_interval_ms=100, timestamp="server")
    settings = gateway_settings(unique_id, mosquitto, tmp_path, [config])

    def values() -> dict[str, list[wire.Sample]]:
        out: dict[str, list[wire.Sample]] = {}
        for p in collector.of(dev, "data"):
            for s in wire.decode_data(p, compound="native").samples:
                out.setdefault(s.tag, []).append(s)
        return out

    async with asyncio.timeout(60), gateway_running(settings):
        await wait_for(lambda: "Tool" in values() and len(values().get("Late", [])) >= 3, 20, "values")
        (tool,) = values()["Tool"]
        assert tool.value == TOOL
        (meta,) = collector.metas(dev)[-1:]
        assert {t.tag: t.data_type for t in meta.tags} == {"Tool": "ToolInfo", "Late": "Double"}
        now = wire.now_us()
        for s in values()["Late"]:
            assert now - 30_000_000 < s.ts <= now  # the server's clock, not the source's hour ahead


async def test_method_arguments_are_typed_and_checked_before_sending(cell: str, tmp_path: Path) -> None:
    control = DeviceControl(DeviceConfig(id="cell", endpoint=cell, root=ROOT), Pki(tmp_path))
    try:
        async with asyncio.timeout(30):
            assert await control.call("LoadProgram", ["P-100", 250]) == {"outputs": [True, "P-100:250.0"]}
            reach = await control.call("Mount", [TOOL])
            assert reach == {"outputs": [42.5 + 0.1 - 0.2]}
            bad: list[tuple[list[Any], str]] = [
                (["P-100", "fast"], "LoadProgram argument 2 (Feed): expected a Double"),
                ([1, 2.0], "LoadProgram argument 1 (ProgramName): expected a String"),
                (["P-100"], "LoadProgram takes 2 argument(s) (ProgramName: String, Feed: Double)"),
                (["P-100", [1.0]], "argument 2 (Feed): expected a single Double"),
            ]
            for args, message in bad:
                with pytest.raises(ControlError) as err:
                    await control.call("LoadProgram", args)
                assert err.value.code == "invalid" and message in str(err.value), err.value
            with pytest.raises(ControlError) as err:
                await control.call("Mount", [{"Name": "x", "Diameter": 3}])
            assert err.value.code == "invalid" and "Diameter" in str(err.value)
    finally:
        await control.close()
