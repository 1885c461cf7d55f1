"""What passwords, the ACL and TLS cost on the MQTT hop: the same QoS 1 stream, plain and secured.

A gateway-like publisher sends 50-value batches (orjson, ~2.5 KB) to a real Mosquitto and a
platform-like subscriber decodes them, with Plantwire's client factory. Prints delivered values/s and
CPU per message of the clients and of Mosquitto, measured as process CPU time (steadier than wall
time on a busy machine). 4,000 messages are 200,000 values: 20 s of a 10k values/s plant.

    python bench/mqtt_security.py --messages 4000 --rounds 2
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psutil
from pydantic import SecretStr

from plantwire import wire
from plantwire.broker import BrokerTls, MosquittoProcess, free_port
from plantwire.broker_auth import Identity, Role, client_usernames, new_password, write_mosquitto_auth
from plantwire.config import MqttSettings
from plantwire.mqtt_control import new_client
from plantwire.pki import init_pki

WINDOW = 200


def _settings(port: int, identity: Identity | None, ca: Path | None) -> MqttSettings:
    if identity is None:
        return MqttSettings(port=port)
    return MqttSettings(
        port=port,
        username=identity.username,
        password=SecretStr(identity.password),
        client_usernames=client_usernames(identity),
        tls_ca_file=ca,
    )


def run(secure: bool, messages: int) -> str:
    work = Path(tempfile.mkdtemp(prefix="plantwire-mqtt-sec-"))
    platform = Identity("platform", new_password(), Role.PLATFORM)
    gateway = Identity("bench", new_password(), Role.GATEWAY, "bench")
    auth, tls, ca = None, None, None
    if secure:
        auth = write_mosquitto_auth(work / "auth", [platform, gateway])
        pki = init_pki(work / "pki", ["localhost"])
        tls, ca = BrokerTls(pki.ca_file, pki.server_cert, pki.server_key), pki.ca_file
    broker = MosquittoProcess(port=free_port(), data_dir=work / "mosquitto", auth=auth, tls=tls)
    broker.start()
    assert broker.process is not None
    received = 0
    done, subscribed = threading.Event(), threading.Event()

    def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        nonlocal received
        orjson.loads(msg.payload)
        received += 1
        if received == messages:
            done.set()

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        c.subscribe(f"{wire.ROOT}/+/+/data", 1)

    sub = new_client(
        _settings(broker.port, platform if secure else None, ca), "plantwire-platform", clean_session=True
    )
    sub.on_connect, sub.on_message = on_connect, on_message
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    subscribed.wait(30)
    acked = threading.Semaphore(WINDOW)
    pub = new_client(
        _settings(broker.port, gateway if secure else None, ca), "plantwire-gw-bench", clean_session=True
    )
    pub.max_inflight_messages_set(WINDOW)
    pub.on_publish = lambda *a: acked.release()
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    values = [{"tag": f"t{i}", "ts": 1_796_156_000_000_000 + i, "v": i * 1.5, "s": 0} for i in range(50)]
    payload = orjson.dumps({"seq": 1, "values": values})
    topic = wire.device_topic("bench", "m1", "data")
    mosq = psutil.Process(broker.process.pid)
    cpu0, mosq0, t0 = time.process_time(), sum(mosq.cpu_times()[:2]), time.monotonic()
    for _ in range(messages):
        acked.acquire(timeout=30)
        pub.publish(topic, payload, qos=1)
    done.wait(120)
    cpu1, mosq1, t1 = time.process_time(), sum(mosq.cpu_times()[:2]), time.monotonic()
    for client in (pub, sub):
        client.disconnect()
        client.loop_stop()
    broker.stop()
    n = max(received, 1)
    return (
        f"{'auth+ACL+TLS' if secure else 'plain       '}  {received}/{messages} msgs ({len(payload)} B)  "
        f"{received * 50 / (t1 - t0):>8,.0f} values/s  clients {1e6 * (cpu1 - cpu0) / n:5.0f} µs/msg  "
        f"mosquitto {1e6 * (mosq1 - mosq0) / n:4.0f} µs/msg"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=2, help="alternate plain and secured this many times")
    args = ap.parse_args()
    for _ in range(args.rounds):
        for secure in (False, True):
            print(run(secure, args.messages), flush=True)


if __name__ == "__main__":
    main()
