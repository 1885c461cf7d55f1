"""A client browsing a simulated machine finds what the gateway relies on: names, types, units, access."""

from __future__ import annotations

import asyncio

from asyncua import Client, ua
from sim_client import node

from plantwire_sims.machine import SimMachine

ANALOG_UNITS = {
    "cnc": {
        "Spindle/Speed": "rpm",
        "Spindle/Load": "%",
        "Spindle/SpeedSetpoint": "rpm",
        "Axes/X": "mm",
        "Axes/Y": "mm",
        "Axes/Z": "mm",
        "Thermal/SpindleTemperature": "degC",
        "Extra/T0001": "%",
        "Extra/T0002": "%",
    },
    "pump": {
        "Hydraulics/Flow": "m3/h",
        "Hydraulics/DischargePressure": "bar",
        "Motor/Current": "A",
        "Motor/SpeedSetpoint": "%",
        "Condition/VibrationRMS": "mm/s",
        "Condition/BearingWear": "%",
    },
    "meter": {
        "Power/L1": "kW",
        "Power/L2": "kW",
        "Power/L3": "kW",
        "Power/Total": "kW",
        "Power/PowerFactor": "1",
        "Energy/Total": "kWh",
    },
}
DISCRETE = {
    "cnc": {
        "Production/PartCount": ua.VariantType.UInt32,
        "Production/RejectCount": ua.VariantType.UInt32,
        "Status/State": ua.VariantType.String,
        "Status/Program": ua.VariantType.String,
    },
    "pump": {"Status/State": ua.VariantType.String},
    "meter": {},
}
WRITABLE = {"cnc": {"Spindle/SpeedSetpoint"}, "pump": {"Motor/SpeedSetpoint"}, "meter": set()}
METHODS = {
    "cnc": {"Start", "Stop", "Reset", "LoadProgram"},
    "pump": {"Start", "Stop", "Reset", "SetMode"},
    "meter": set(),
}


async def browse_tags(client: Client, root_id: str) -> dict[str, ua.NodeId]:
    """Tag name -> node id, by the convention: browse names below the machine object joined with '/'."""
    tags: dict[str, ua.NodeId] = {}
    root = client.get_node(root_id)
    for folder in await root.get_children(refs=ua.ObjectIds.Organizes):
        folder_name = (await folder.read_browse_name()).Name
        for variable in await folder.get_children(refs=ua.ObjectIds.HasComponent):
            tags[f"{folder_name}/{(await variable.read_browse_name()).Name}"] = variable.nodeid
    return tags


async def check_machine(profile: str, port: int, extra_tags: int) -> None:
    name = f"{profile}-7"
    async with asyncio.timeout(30), SimMachine(profile, name, port, extra_tags=extra_tags) as machine:
        assert machine.endpoint == f"opc.tcp://127.0.0.1:{port}"
        assert machine.root_node_id == f"ns=2;s={name}"
        async with Client(machine.endpoint) as client:
            assert await client.get_namespace_index("urn:plantwire:sim") == 2
            root = client.get_node(machine.root_node_id)
            assert await root.read_browse_name() == ua.QualifiedName(name, 2)
            assert name in {
                (await n.read_browse_name()).Name for n in await client.nodes.objects.get_children()
            }

            tags = await browse_tags(client, machine.root_node_id)
            assert sorted(tags) == sorted(machine.tags)
            expected_units = {k: v for k, v in ANALOG_UNITS[profile].items() if k in machine.tags}
            assert set(expected_units) | set(DISCRETE[profile]) == set(machine.tags)
            for tag, node_id in tags.items():
                assert node_id == ua.NodeId.from_string(node(machine, tag))
                variable = client.get_node(node_id)
                assert (await variable.read_description()).Text
                access = await variable.read_attribute(ua.AttributeIds.UserAccessLevel)
                assert access.Value is not None
                writable = bool(access.Value.Value & ua.AccessLevel.CurrentWrite.mask)
                assert writable == (tag in WRITABLE[profile]), tag
                value = (await variable.read_data_value()).Value
                assert value is not None
                if tag in expected_units:
                    assert value.VariantType == ua.VariantType.Double, tag
                    assert await variable.read_data_type() == ua.NodeId.from_string("i=11")
                    assert await variable.read_type_definition() == ua.NodeId.from_string(
                        f"i={ua.ObjectIds.AnalogItemType}"
                    )
                    unit = await variable.get_child("0:EngineeringUnits")
                    assert (await unit.read_value()).DisplayName.Text == expected_units[tag], tag
                else:
                    assert value.VariantType == DISCRETE[profile][tag], tag

            methods = {
                (await m.read_browse_name()).Name
                for m in await root.get_children(
                    refs=ua.ObjectIds.HasComponent, nodeclassmask=ua.NodeClass.Method
                )
            }
            assert methods == METHODS[profile]


async def test_cnc_address_space_with_extra_tags(port: int) -> None:
    await check_machine("cnc", port, extra_tags=2)


async def test_pump_address_space(port: int) -> None:
    await check_machine("pump", port, extra_tags=0)


async def test_meter_address_space(port: int) -> None:
    await check_machine("meter", port, extra_tags=0)


async def test_setpoint_range_and_read_only_tags_are_enforced(port: int) -> None:
    async with (
        asyncio.timeout(30),
        SimMachine("cnc", "cnc-1", port) as machine,
        Client(machine.endpoint) as client,
    ):
        setpoint = client.get_node(node(machine, "Spindle/SpeedSetpoint"))
        spec = next(s for s in machine.specs if s.path == "Spindle/SpeedSetpoint")
        range_value = await (await setpoint.get_child("0:EURange")).read_value()
        assert (range_value.Low, range_value.High) == spec.eu_range == (0.0, 12_000.0)
        try:
            await setpoint.write_value(ua.Variant(20_000.0, ua.VariantType.Double))
        except ua.UaStatusCodeError as err:
            assert err.code == ua.StatusCodes.BadOutOfRange
        else:
            raise AssertionError("a setpoint above its EURange was accepted")
        try:
            await client.get_node(node(machine, "Spindle/Speed")).write_value(
                ua.Variant(1.0, ua.VariantType.Double)
            )
        except ua.UaStatusCodeError as err:
            assert err.code == ua.StatusCodes.BadUserAccessDenied
        else:
            raise AssertionError("a read-only tag accepted a write")
        assert await setpoint.read_value() == spec.initial
