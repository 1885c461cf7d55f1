"""Runs under pysparkplug's own venv: a pysparkplug EdgeNode with one device, driven by lines on
stdin, reporting on stdout as JSON lines.

    python edge.py HOST PORT GROUP EDGE_NODE DEVICE [STATE_HOST_ID]

stdin: connect | update | gap | dcmd GROUP EDGE DEVICE | ddeath | disconnect
stdout: {"event": "ready"}, {"event": "ncmd", ...}, {"event": "state", ...}, {"event": "<command>"}
With STATE_HOST_ID it only reports that host's STATE message (decoded by pysparkplug).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pysparkplug as psp

T = psp.DataType


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def metric(name: str, datatype: psp.DataType, value: Any) -> psp.Metric:
    return psp.Metric(timestamp=psp.get_current_timestamp(), name=name, datatype=datatype, value=value)


def on_ncmd(node: psp.EdgeNode, message: psp.Message) -> None:
    metrics = [
        {"name": m.name, "datatype": m.datatype.name, "value": m.value} for m in message.payload.metrics
    ]
    emit({"event": "ncmd", "topic": str(message.topic), "metrics": metrics})


def watch_state(host: str, port: int, host_id: str) -> None:
    client = psp.Client()
    topic = psp.Topic(message_type=psp.MessageType.STATE, sparkplug_host_id=host_id)

    def on_state(c: psp.Client, message: psp.Message) -> None:
        emit({"event": "state", "online": message.payload.online, "timestamp": message.payload.timestamp})

    client.subscribe(topic, psp.QoS.AT_LEAST_ONCE, on_state)
    client.connect(host, port=port, blocking=False)
    emit({"event": "ready"})
    sys.stdin.read()


def main() -> None:
    host, port, group, edge_id, device_id = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
    if len(sys.argv) > 6:
        watch_state(host, port, sys.argv[6])
        return
    node = psp.EdgeNode(
        group, edge_id, [metric("Node Control/Rebirth", T.BOOLEAN, False)], cmd_callback=on_ncmd
    )
    device = psp.Device(
        device_id,
        [
            metric("temp", T.INT16, -40),
            metric("speed", T.DOUBLE, 1.5),
            metric("label", T.STRING, "a"),
            metric("bits", T.BOOLEAN_ARRAY, (True, False, True)),
        ],
    )
    node.register(device)
    emit({"event": "ready"})
    for line in sys.stdin:
        command = line.strip()
        try:
            if command == "connect":
                node.connect(host, port=port, blocking=False)
            elif command == "update":
                node.update_device(device_id, [metric("temp", T.INT16, -41)])
            elif command == "gap":
                _ = node._seq  # pysparkplug's own seq counter: take one number and never send it
                node.update_device(device_id, [metric("temp", T.INT16, -42)])
            elif command.startswith("dcmd "):  # dcmd GROUP EDGE DEVICE: write count=-9, by name
                g, e, d = command.split()[1:]
                topic = psp.Topic(message_type=psp.MessageType.DCMD, group_id=g, edge_node_id=e, device_id=d)
                payload = psp.DCmd(
                    timestamp=psp.get_current_timestamp(), metrics=(metric("count", T.INT32, -9),)
                )
                node._client.publish(
                    psp.Message(topic=topic, payload=payload, qos=psp.QoS.AT_MOST_ONCE, retain=False)
                )
                command = "dcmd"
            elif command == "ddeath":
                node.deregister(device_id)
            elif command == "disconnect":
                node.disconnect()
                emit({"event": "disconnected"})
                continue
            emit({"event": command})
        except Exception as err:
            emit({"error": f"{command}: {type(err).__name__}: {err}"})


if __name__ == "__main__":
    main()
