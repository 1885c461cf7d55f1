"""A small real OPC UA server for the gateway tests: one machine object `ns=2;s=m1`.

Address space below Objects/m1 (tag names as the gateway must report them)::

    Spindle/Speed     Double   unit "rpm", EURange 0..24000
    Spindle/Load      Double   unit "%"
    Axis/X/Position   Double   unit "mm"
    Status/Running    Boolean
    Status/Program    String
    Status/PartCount  UInt32
    Setpoint          Double   writable, unit "rpm"
    Reset             method (not a tag)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from asyncua import Node, Server, ua

from plantwire_sims.asyncua_internals import init_server

NAMESPACE = "urn:plantwire:test:machine"

TAGS: dict[str, tuple[ua.VariantType, Any, str | None]] = {
    "Spindle/Speed": (ua.VariantType.Double, 0.0, "rpm"),
    "Spindle/Load": (ua.VariantType.Double, 0.0, "%"),
    "Axis/X/Position": (ua.VariantType.Double, 0.0, "mm"),
    "Status/Running": (ua.VariantType.Boolean, False, None),
    "Status/Program": (ua.VariantType.String, "", None),
    "Status/PartCount": (ua.VariantType.UInt32, 0, None),
    "Setpoint": (ua.VariantType.Double, 0.0, "rpm"),
}


@dataclass
class MachineServer:
    """Start, stop and start again on the same port; write values with chosen source timestamps."""

    port: int
    server: Server | None = None
    nodes: dict[str, Node] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}"

    async def start(self) -> None:
        server = Server()
        await init_server(server)  # asyncua's init, its standard nodes copied (fast)
        server.set_endpoint(f"{self.endpoint}/")
        server.set_server_name("plantwire test machine")
        idx = await server.register_namespace(NAMESPACE)
        machine = await server.nodes.objects.add_object(ua.NodeId("m1", idx), ua.QualifiedName("m1", idx))
        self.nodes = {}
        for tag, (vtype, initial, unit) in TAGS.items():
            parent = machine
            *folders, name = tag.split("/")
            for i, folder in enumerate(folders):
                path = "/".join(folders[: i + 1])
                nid = ua.NodeId(f"m1.{path}", idx)
                existing = self.nodes.get(f"folder:{path}")
                parent = existing or await parent.add_folder(nid, ua.QualifiedName(folder, idx))
                self.nodes[f"folder:{path}"] = parent
            var = await parent.add_variable(
                ua.NodeId(f"m1.{tag}", idx), ua.QualifiedName(name, idx), ua.Variant(initial, vtype)
            )
            if unit is not None:
                eu = ua.EUInformation(
                    NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
                    UnitId=-1,
                    DisplayName=ua.LocalizedText(unit),
                    Description=ua.LocalizedText(unit),
                )
                await var.add_property(
                    ua.NodeId(f"m1.{tag}.EngineeringUnits", idx), ua.QualifiedName("EngineeringUnits", 0), eu
                )
            self.nodes[tag] = var
        await self.nodes["Spindle/Speed"].add_property(
            ua.NodeId("m1.Spindle/Speed.EURange", idx),
            ua.QualifiedName("EURange", 0),
            ua.Range(Low=0.0, High=24000.0),
        )
        await self.nodes["Spindle/Speed"].write_attribute(
            ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText("spindle speed")))
        )
        await self.nodes["Setpoint"].set_writable()
        await machine.add_method(idx, "Reset", lambda parent: [], [], [])
        await server.start()
        self.server = server

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    async def write(self, tag: str, value: Any, ts: datetime | None = None) -> int:
        """Write a value with source timestamp `ts` (default now); returns the timestamp in µs."""
        ts = ts or datetime.now(UTC)
        vtype = TAGS[tag][0]
        dv = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=ts, ServerTimestamp=ts)
        await self.nodes[tag].write_value(dv)
        return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
