"""paho's receive path as the platform's ingest uses it: CPU per data message, with and without decode.

A persistent session (clean_session=False, manual acks, the platform's options) is registered, the
broker is given `--messages` wire v1 data messages of `--values` values for it while it is away,
then the client connects and drains them: each message acknowledged in paho's own thread, either
untouched (`ack`: paho's reads, packet handling and the PUBACK) or decoded first as the ingest does
(`decode`: `mqtt_ingest.decode_message`). Printed: CPU µs per message and per value (this process
only; the broker is another process).

    python bench/paho_receive.py --messages 5000 --values 100
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from plantwire import wire
from plantwire.broker import MosquittoProcess, free_port
from plantwire.config import MqttSettings
from plantwire.mqtt_control import new_client
from plantwire_platform.ingest.mqtt_ingest import decode_message

CLIENT_ID = "bench-receive"


def _session(settings: MqttSettings, port: int) -> None:
    """Register the persistent session's subscriptions, then go away."""
    client = new_client(settings, CLIENT_ID, clean_session=False, manual_ack=True)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe([(f, 1) for f in wire.SUBSCRIPTIONS])
    if not subscribed.wait(10):
        raise SystemExit("no SUBACK")
    client.disconnect()
    client.loop_stop()


def _publish(settings: MqttSettings, port: int, messages: int, values: int) -> None:
    now = wire.now_us()
    samples = [wire.Sample(f"t{i:03d}", now, float(i)) for i in range(values)]
    payload = wire.encode_data(wire.DataBatch(1, now, samples))
    client = new_client(settings, "bench-publisher", clean_session=True)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    topic = wire.device_topic("gw", "gw-d1", "data")
    infos = [client.publish(topic, payload, qos=1) for _ in range(messages)]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def _drain(settings: MqttSettings, port: int, messages: int, decode: bool) -> float:
    """CPU seconds of this process while the session's messages arrive and are acknowledged."""
    client = new_client(settings, CLIENT_ID, clean_session=False, manual_ack=True)
    got = [0]
    done = threading.Event()

    def on_message(c: Any, userdata: Any, msg: Any) -> None:
        if decode:
            decode_message(msg.topic, bytes(msg.payload))
        c.ack(msg.mid, msg.qos)
        got[0] += 1
        if got[0] >= messages:
            done.set()

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    cpu0 = time.process_time()
    client.loop_start()
    if not done.wait(300):
        raise SystemExit(f"only {got[0]} of {messages} messages arrived")
    cpu = time.process_time() - cpu0
    client.disconnect()
    client.loop_stop()
    return cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--values", type=int, default=100, help="values per message")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="plantwire-paho-") as work:
        broker = MosquittoProcess(port=free_port(), data_dir=Path(work) / "mosquitto")
        broker.start()
        try:
            settings = MqttSettings(port=broker.port)
            _session(settings, broker.port)
            for mode in ("ack", "decode"):
                _publish(settings, broker.port, args.messages, args.values)
                cpu = _drain(settings, broker.port, args.messages, decode=mode == "decode")
                us = cpu / args.messages * 1e6
                size = f"{args.messages} x {args.values}"
                print(f"{mode:<7} {us:6.1f} µs CPU a message, {us / args.values:5.2f} µs a value ({size})")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
