"""Runs under pysparkplug's own venv: a pysparkplug EdgeNode whose device takes DCMDs.

    python dcmd_edge.py HOST PORT GROUP EDGE_NODE DEVICE

The device has `setpoint` (Double, alias 11: a DCMD to it is applied and reported back in DDATA),
`mode` (Int32, no alias: a DCMD to it is received but never reported back) and `bits`
(BooleanArray). stdin: connect | disconnect. stdout: {"event": "ready"}, {"event": "connect"},
{"event": "dcmd", "topic": ..., "metrics": [{"name", "alias", "datatype", "value"}]} per DCMD.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pysparkplug as psp

T = psp.DataType
SETPOINT_ALIAS = 11


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def metric(name: str, datatype: psp.DataType, value: Any, alias: int | None = None) -> psp.Metric:
    return psp.Metric(
        timestamp=psp.get_current_timestamp(), name=name, datatype=datatype, value=value, alias=alias
    )


def main() -> None:
    host, port, group, edge_id, device_id = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]

    def on_dcmd(node: psp.EdgeNode, message: psp.Message) -> None:
        got = [
            {"name": m.name, "alias": m.alias, "datatype": m.datatype.name, "value": m.value}
            for m in message.payload.metrics
        ]
        emit({"event": "dcmd", "topic": str(message.topic), "metrics": got})
        for m in message.payload.metrics:  # the device applies a setpoint and reports it
            if m.alias == SETPOINT_ALIAS:
                node.update_device(device_id, [metric("setpoint", T.DOUBLE, m.value, SETPOINT_ALIAS)])

    node = psp.EdgeNode(group, edge_id, [metric("Node Control/Rebirth", T.BOOLEAN, False)])
    device = psp.Device(
        device_id,
        [
            metric("setpoint", T.DOUBLE, 1.0, SETPOINT_ALIAS),
            metric("mode", T.INT32, 0),
            metric("bits", T.BOOLEAN_ARRAY, (True, False)),
        ],
        cmd_callback=on_dcmd,
    )
    node.register(device)
    emit({"event": "ready"})
    for line in sys.stdin:
        command = line.strip()
        try:
            if command == "connect":
                node.connect(host, port=port, blocking=False)
            elif command == "disconnect":
                node.disconnect()
            emit({"event": command})
        except Exception as err:
            emit({"error": f"{command}: {type(err).__name__}: {err}"})


if __name__ == "__main__":
    main()
