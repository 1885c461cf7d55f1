"""Gateway CPU at a given value rate: real OPC UA server -> gateway -> Mosquitto -> subscriber.

The server and the gateway run as separate processes, so the gateway's CPU is measured alone
(psutil, over the steady part of the run). Prints the rate written, the rate delivered to an MQTT
subscriber, and the gateway's CPU in % of one core.

    /tmp/pwvenv/bin/python bench/gateway_cpu.py --rate 10000 --tags 100 --seconds 20
    /tmp/pwvenv/bin/python bench/gateway_cpu.py --rate 10000 --security Basic256Sha256   # SignAndEncrypt
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from plantwire import wire
from plantwire.broker import MosquittoProcess, free_port, wait_for_port
from plantwire.extras import missing_extra_message

try:
    import psutil
except ModuleNotFoundError:
    sys.exit(missing_extra_message("psutil", "bench", "bench/gateway_cpu.py"))


async def serve(port: int, rate: int, tags: int, seconds: float, security: str, pki: Path) -> None:
    """The value source: `tags` Double variables under ns=2;s=bench, `rate` writes a second in all."""
    from asyncua import Server, ua

    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    if security != "None":
        from asyncua.crypto import cert_gen
        from cryptography.x509.oid import ExtendedKeyUsageOID

        uri = "urn:plantwire:bench:server"
        await server.set_application_uri(uri)
        key, cert = pki / "server-key.pem", pki / "server-cert.der"
        await cert_gen.setup_self_signed_certificate(
            key, cert, uri, "127.0.0.1", [ExtendedKeyUsageOID.SERVER_AUTH], {}
        )
        await server.load_certificate(str(cert))
        await server.load_private_key(str(key))
        server.set_security_policy([getattr(ua.SecurityPolicyType, f"{security}_SignAndEncrypt")])
    idx = await server.register_namespace("urn:plantwire:bench")
    root = await server.nodes.objects.add_object(ua.NodeId("bench", idx), ua.QualifiedName("bench", idx))
    nodes = [await root.add_variable(ua.NodeId(f"bench.v{i}", idx), f"v{i}", 0.0) for i in range(tags)]
    async with server:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the bench says when the gateway is subscribed
        tick = 0.01
        per_tick = max(1, round(rate * tick))
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            for _ in range(per_tick):
                node = nodes[n % tags]
                dv = ua.DataValue(
                    ua.Variant(float(n), ua.VariantType.Double), SourceTimestamp=datetime.now(UTC)
                )
                await server.write_attribute_value(node.nodeid, dv)
                n += 1
            next_at = start + (n / rate)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        print(f"written {n}", flush=True)
        await asyncio.to_thread(sys.stdin.readline)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=10_000, help="values written per second in all")
    parser.add_argument("--tags", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--security", default="None", help="None or a policy (Basic256Sha256, ...) with SignAndEncrypt"
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pki", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.rate, args.tags, args.seconds, args.security, args.pki))
        return

    work = Path(tempfile.mkdtemp(prefix="gwbench-"))
    broker = MosquittoProcess(port=free_port(), data_dir=work / "mosquitto")
    broker.start()
    opc_port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            str(opc_port),
            "--rate",
            str(args.rate),
            "--tags",
            str(args.tags),
            "--seconds",
            str(args.seconds),
            "--security",
            args.security,
            "--pki",
            str(work),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    assert server.stdout.readline().strip() == "ready"
    wait_for_port("127.0.0.1", opc_port)

    received = 0
    lock = threading.Lock()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal received
        with lock:
            received += len(orjson.loads(msg.payload)["values"])

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gwbench-sub")
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe(wire.device_topic("bench", "m1", "data"), qos=1)
    sub.loop_start()

    config = work / "gateway.toml"
    security = (
        ""
        if args.security == "None"
        else (f'security_policy = "{args.security}"\ntrust_server_certificate = "first-use"\n')
    )
    config.write_text(
        f'[[devices]]\nid = "m1"\nendpoint = "opc.tcp://127.0.0.1:{opc_port}"\n'
        f'root = "ns=2;s=bench"\n{security}'
    )
    code = (
        "from plantwire.logs import configure_logging; configure_logging('warning', 'console');"
        "from plantwire_gateway import cli; import argparse, sys;"
        "p = argparse.ArgumentParser(); cli.add_arguments(p); sys.exit(cli.run(p.parse_args(sys.argv[1:])))"
    )
    gateway = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--id",
            "bench",
            "--mqtt-port",
            str(broker.port),
            "--data-dir",
            str(work / "gw"),
            "--config",
            str(config),
        ],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    proc = psutil.Process(gateway.pid)
    try:
        deadline = time.monotonic() + 20
        while received < args.tags:  # initial values: the gateway is subscribed
            if time.monotonic() > deadline:
                raise SystemExit("gateway did not deliver the initial values")
            time.sleep(0.05)
        with lock:
            start_count = received
        server.stdin.write("go\n")
        server.stdin.flush()
        time.sleep(min(2.0, args.seconds / 4))  # warm-up
        cpu0, t0 = proc.cpu_times(), time.monotonic()
        with lock:
            r0 = received
        time.sleep(args.seconds - min(2.0, args.seconds / 4) - 1.0)
        cpu1, t1 = proc.cpu_times(), time.monotonic()
        with lock:
            r1 = received
        written = int(server.stdout.readline().split()[1])
        deadline = time.monotonic() + 30
        while received - start_count < written and time.monotonic() < deadline:
            time.sleep(0.1)
        cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0) * 100
        print(f"security           {args.security}{'' if args.security == 'None' else ' SignAndEncrypt'}")
        print(f"target rate        {args.rate} values/s over {args.tags} tags")
        print(f"delivered rate     {(r1 - r0) / (t1 - t0):.0f} values/s (steady window)")
        print(f"gateway CPU        {cpu:.1f} % of one core")
        print(f"per value          {cpu / 100 / max(1.0, (r1 - r0) / (t1 - t0)) * 1e6:.1f} us")
        delivered = received - start_count
        print(f"written/delivered  {written} / {delivered} (missing {written - delivered})")
    finally:
        gateway.terminate()
        gateway.wait(15)
        server.stdin.write("bye\n")
        server.stdin.flush()
        server.wait(15)
        sub.loop_stop()
        broker.stop()


if __name__ == "__main__":
    main()
