"""Runs under pysparkplug's own venv: subscribes to one Sparkplug group with pysparkplug's Client
and prints every message as pysparkplug decoded it, one JSON object per line.

    python listen.py HOST PORT GROUP
"""

from __future__ import annotations

import datetime
import json
import sys
import threading
from typing import Any

import pysparkplug as psp
from pysparkplug._protobuf import Payload as PbPayload  # its own generated protobuf module


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return {"datetime_ms": round(value.timestamp() * 1000)}
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value


def properties(raw: bytes) -> list[dict[str, Any]]:
    """pysparkplug does not decode PropertySets; read them with its protobuf classes."""
    out = []
    for metric in PbPayload.FromString(raw).metrics:
        props = {}
        for key, pv in zip(metric.properties.keys, metric.properties.values, strict=False):
            which = pv.WhichOneof("value")
            props[key] = {"type": pv.type, "value": getattr(pv, which) if which else None}
        out.append(props)
    return out


def on_message(client: psp.Client, message: psp.Message, raw: bytes) -> None:
    payload = message.payload
    metrics = []
    for metric, props in zip(
        getattr(payload, "metrics", ()) or (getattr(payload, "bd_seq_metric", None),),
        properties(raw),
        strict=False,
    ):
        if metric is None:
            continue
        metrics.append(
            {
                "name": metric.name,
                "alias": metric.alias,
                "datatype": metric.datatype.name,
                "value": plain(metric.value),
                "is_null": metric.is_null,
                "is_historical": metric.is_historical,
                "timestamp": metric.timestamp,
                "properties": props,
            }
        )
    emit(
        {
            "event": "message",
            "topic": str(message.topic),
            "type": str(message.topic.message_type),
            "qos": int(message.qos),
            "retain": bool(message.retain),
            "seq": getattr(payload, "seq", None),
            "timestamp": getattr(payload, "timestamp", None),
            # pysparkplug 0.6.1's NDeath.decode drops a timestamp that is there (inverted check),
            # so also say what the protobuf itself holds.
            "pb_timestamp": PbPayload.FromString(raw).timestamp or None,
            "metrics": metrics,
        }
    )


def main() -> None:
    host, port, group = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = psp.Client()
    subscribed = threading.Event()
    client._client.on_subscribe = lambda *args: subscribed.set()  # paho 1.x: SUBACK, to say ready
    raw_of: dict[int, bytes] = {}

    def callback(c: psp.Client, message: psp.Message) -> None:
        try:
            on_message(c, message, raw_of.pop(id(threading.current_thread()), b""))
        except Exception as err:  # report, never die silently in paho's thread
            emit({"error": f"{type(err).__name__}: {err}"})

    # Keep each message's raw bytes for the PropertySet read: wrap pysparkplug's own handler.
    original = client._handle_message

    def handle(mqtt_message: Any) -> psp.Message:
        raw_of[id(threading.current_thread())] = mqtt_message.payload
        return original(mqtt_message)

    client._handle_message = handle  # type: ignore[method-assign]
    client.subscribe(psp.Topic(group_id=group, message_type="#"), psp.QoS.AT_LEAST_ONCE, callback)
    client.connect(host, port=port, blocking=False)
    if not subscribed.wait(20):
        emit({"error": "no SUBACK"})
        return
    emit({"event": "ready"})
    sys.stdin.read()  # until the test closes our stdin or ends us
    client.disconnect()


if __name__ == "__main__":
    main()
