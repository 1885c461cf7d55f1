"""Gateway efficiency: simulator process -> gateway process -> Mosquitto -> subscriber, per value rate.

Each scenario `TAGSxHZ` runs a simulated meter (`plantwire sim`, the simulator's cheap write path;
`--sims N` splits the tags over N machines in N processes) with TAGS extra tags written HZ times a
second, a `plantwire gateway` process subscribed to all of them (publishing interval
`--publishing-ms`, 100 ms by default, and a queue that holds a few intervals) and an MQTT
subscriber in this process that counts the values of every data message and checks each device's
seq (no gap, no repeat). The gateway's CPU is measured alone (psutil, its process CPU time over the
steady window after a warm-up), so the figures hold on a loaded machine:

  delivered      values/s the subscriber received during the steady window
  per core-s     delivered values per second of gateway CPU (user + system)
  RSS            the gateway's resident memory: peak over the whole run, steady = median of the window

`--northbound plantwire,sparkplug` runs each scenario once per mode, back to back (a fresh broker,
simulator and gateway each time): `plantwire` counts the JSON wire's data messages, `sparkplug` the
gateway as a Sparkplug B edge node (its DDATA metrics; the seq 0-255 is checked over every message
of the edge node). `bytes/value` is the data payloads' bytes over the values in them.

The issue's figures (1,000 tags every 100 ms = 10k values/s, and 20k values/s as 2,000 tags every
100 ms), both in one command, with the load average printed beside them:

    .venv/bin/python bench/gateway_cpu.py                        # --scenarios 1000x10,2000x10
    .venv/bin/python bench/gateway_cpu.py --scenarios 1000x20    # 20k as 1,000 tags every 50 ms
    .venv/bin/python bench/gateway_cpu.py --sims 2               # one simulator cannot write 20k/s here
    .venv/bin/python bench/gateway_cpu.py --scenarios 1000x10 --security Basic256Sha256  # SignAndEncrypt
    .venv/bin/python bench/gateway_cpu.py --scenarios 1000x10 --profile var/gw.html     # pyinstrument
    .venv/bin/python bench/gateway_cpu.py --scenarios 1000x10 --northbound plantwire,sparkplug

`--profile FILE` runs the gateway under pyinstrument (installed separately: it is not a project
dependency) and writes its report to FILE when the gateway stops: HTML for .html, a session for
`pyinstrument --load FILE --show-all` for .pyisession, text otherwise. CPU figures of a profiled run
are not comparable with an unprofiled one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from plantwire import wire
from plantwire.broker import MosquittoProcess, free_port, wait_for_port
from plantwire.extras import missing_extra_message
from plantwire.sparkplug import sparkplug_b_pb2 as spb

try:
    import psutil
except ModuleNotFoundError:
    sys.exit(missing_extra_message("psutil", "bench", "bench/gateway_cpu.py"))

CLI = ["-m", "plantwire", "--log-format", "json", "--log-level", "warning"]
GATEWAY_ID = "bench"
DEVICE = "m1"
NORTHBOUNDS = ("plantwire", "sparkplug")


@dataclass
class Counter:
    """What the subscriber saw: values, messages, payload bytes, seq gaps and repeats (on paho's thread).

    JSON wire: one seq per device, 1, 2, ...; Sparkplug: one seq 0-255 over all the edge node's messages
    (births included), so a gap or repeat is any step other than +1 mod 256."""

    sparkplug: bool = False
    values: int = 0
    messages: int = 0
    bytes: int = 0
    gaps: int = 0
    repeats: int = 0
    last_seq: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def topic(self) -> str:
        return f"spBv1.0/+/+/{GATEWAY_ID}/#" if self.sparkplug else wire.device_topic(GATEWAY_ID, "+", "data")

    def on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self.sparkplug:
            self._on_sparkplug(msg)
            return
        body = orjson.loads(msg.payload)
        seq = body["seq"]
        with self.lock:
            self.values += len(body["values"])
            self.messages += 1
            self.bytes += len(msg.payload)
            last = self.last_seq.get(msg.topic, 0)
            if last and seq > last + 1:
                self.gaps += seq - last - 1
            elif seq <= last:
                self.repeats += 1
            self.last_seq[msg.topic] = max(seq, last)

    def _on_sparkplug(self, msg: mqtt.MQTTMessage) -> None:
        kind = msg.topic.split("/")[2]
        if kind not in ("NBIRTH", "DBIRTH", "DDATA", "DDEATH"):
            return  # NDEATH carries no seq; commands are not the edge node's
        payload = spb.Payload.FromString(msg.payload)
        with self.lock:
            last = self.last_seq.get("edge")
            if kind == "NBIRTH":
                pass  # seq starts over at 0
            elif last is not None and payload.seq != (last + 1) % 256:
                if payload.seq == last:
                    self.repeats += 1
                else:
                    self.gaps += (payload.seq - last - 1) % 256
            self.last_seq["edge"] = payload.seq
            if kind == "DDATA":
                self.values += len(payload.metrics)
                self.messages += 1
                self.bytes += len(msg.payload)

    def count(self) -> int:
        with self.lock:
            return self.values

    def sizes(self) -> tuple[int, int]:
        with self.lock:
            return self.values, self.bytes


@dataclass
class Result:
    northbound: str
    tags: int
    hz: float
    seconds: float
    delivered: float
    cpu_s: float
    rss_peak: int
    rss_steady: int
    load: tuple[float, float]
    gaps: int
    repeats: int
    bytes_per_value: float

    @property
    def per_core_s(self) -> float:
        return self.delivered * self.seconds / self.cpu_s if self.cpu_s else 0.0


def _parse_scenario(text: str) -> tuple[int, float]:
    tags, _, hz = text.partition("x")
    try:
        return int(tags), float(hz)
    except ValueError:
        raise argparse.ArgumentTypeError(f"scenario {text!r} is not TAGSxHZ, e.g. 1000x10") from None


def _device_config(device: str, port: int, hz: float, publishing_ms: int, security: str) -> str:
    per_interval = int(hz * publishing_ms / 1000) + 1
    lines = [
        "[[devices]]",
        f'id = "{device}"',
        f'endpoint = "opc.tcp://127.0.0.1:{port}"',
        f'root = "ns=2;s={device}"',
        f"publishing_interval_ms = {publishing_ms}",
        f"queue_size = {max(100, per_interval * 10)}",
    ]
    if security != "None":
        lines += [f'security_policy = "{security}"', 'trust_server_certificate = "first-use"']
    return "\n".join(lines) + "\n"


def run_scenario(args: argparse.Namespace, northbound: str, tags: int, hz: float) -> Result:
    work = Path(tempfile.mkdtemp(prefix="gwbench-"))
    broker = MosquittoProcess(port=free_port(), data_dir=work / "mosquitto")
    broker.start()
    ports = [free_port() for _ in range(args.sims)]
    devices = [f"{DEVICE}{i + 1}" if args.sims > 1 else DEVICE for i in range(args.sims)]
    sims = []
    for i, (port, device) in enumerate(zip(ports, devices, strict=True)):
        share = tags // args.sims + (i < tags % args.sims)
        sim_cmd = [sys.executable, *CLI, "sim", "--profile", "meter", "--name", device, "--port",
                   str(port), "--tags", str(share), "--rate", str(hz), "--seed", str(i + 1)]  # fmt: skip
        if args.security != "None":
            sim_cmd += ["--security", f"{args.security}:SignAndEncrypt", "--cert-dir", str(work / "simpki")]
        sims.append(subprocess.Popen(sim_cmd, stdout=subprocess.PIPE, text=True))
    counter = Counter(sparkplug=northbound == "sparkplug")
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gwbench-sub")
    sub.on_message = counter.on_message
    gateway: subprocess.Popen[bytes] | None = None
    try:
        for sim, port in zip(sims, ports, strict=True):
            assert sim.stdout is not None
            sim.stdout.readline()  # the machine's line: it listens
            wait_for_port("127.0.0.1", port, timeout=60)
        sub.connect("127.0.0.1", broker.port)
        sub.subscribe(counter.topic, qos=1)
        sub.loop_start()
        config = work / "gateway.toml"
        config.write_text(
            f'id = "{GATEWAY_ID}"\nnorthbound = "{northbound}"\n'
            + "".join(
                _device_config(device, port, hz, args.publishing_ms, args.security)
                for device, port in zip(devices, ports, strict=True)
            )
        )
        profiler = []
        if args.profile is not None:
            renderers = {".html": "html", ".pyisession": "session"}
            renderer = renderers.get(args.profile.suffix, "text")
            profiler = ["-m", "pyinstrument", "-r", renderer, "-o", str(args.profile)]
        gateway = subprocess.Popen(
            [sys.executable, *profiler, *CLI, "gateway", "--config", str(config), "--mqtt-port",
             str(broker.port), "--data-dir", str(work / "gw")],
            env={**os.environ, **dict(e.split("=", 1) for e in args.gateway_env)},
        )  # fmt: skip
        proc = psutil.Process(gateway.pid)
        rss: list[int] = []
        deadline = time.monotonic() + 60
        while counter.count() < tags:  # the first values: the gateway is subscribed
            if time.monotonic() > deadline or gateway.poll() is not None:
                raise SystemExit("the gateway did not deliver the first values")
            rss.append(proc.memory_info().rss)
            time.sleep(0.1)
        warm_until = time.monotonic() + args.warmup
        while time.monotonic() < warm_until:
            rss.append(proc.memory_info().rss)
            time.sleep(0.25)
        load0 = os.getloadavg()[0]
        t = proc.cpu_times()
        t0 = time.monotonic()
        cpu0, (n0, b0) = t.user + t.system, counter.sizes()
        steady: list[int] = []
        while time.monotonic() - t0 < args.seconds:
            time.sleep(0.25)
            steady.append(proc.memory_info().rss)
        t = proc.cpu_times()
        t1 = time.monotonic()
        cpu1, (n1, b1) = t.user + t.system, counter.sizes()
        load1 = os.getloadavg()[0]
        rss += steady
        return Result(
            northbound=northbound,
            tags=tags,
            hz=hz,
            seconds=t1 - t0,
            delivered=(n1 - n0) / (t1 - t0),
            cpu_s=cpu1 - cpu0,
            rss_peak=max(rss),
            rss_steady=int(statistics.median(steady)),
            load=(load0, load1),
            gaps=counter.gaps,
            repeats=counter.repeats,
            bytes_per_value=(b1 - b0) / (n1 - n0) if n1 > n0 else 0.0,
        )
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(60)
        for sim in sims:
            sim.terminate()
            sim.wait(30)
        sub.loop_stop()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenarios",
        type=lambda s: [_parse_scenario(x) for x in s.split(",")],
        default=[(1000, 10.0), (2000, 10.0)],
        help="comma-separated TAGSxHZ (default 1000x10,2000x10: 10k and 20k values/s)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured (steady) window per scenario")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after the first values")
    parser.add_argument(
        "--sims", type=int, default=1, help="simulator processes (one machine each) to split the tags over"
    )
    parser.add_argument("--publishing-ms", type=int, default=100, help="the device's publishing interval")
    parser.add_argument(
        "--security", default="None", help="None or a policy (Basic256Sha256, ...) with SignAndEncrypt"
    )
    parser.add_argument("--profile", type=Path, help="run the gateway under pyinstrument, report to FILE")
    parser.add_argument(
        "--gateway-env", action="append", default=[], metavar="NAME=VALUE", help="extra gateway environment"
    )
    parser.add_argument(
        "--northbound",
        default="plantwire",
        help="comma-separated gateway modes run one after the other: plantwire (JSON wire), sparkplug",
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.northbound.split(",") if m.strip()]
    if not modes or any(m not in NORTHBOUNDS for m in modes):
        parser.error(f"--northbound takes a comma-separated list of {', '.join(NORTHBOUNDS)}")
    results = [run_scenario(args, mode, tags, hz) for tags, hz in args.scenarios for mode in modes]
    print(
        f"gateway bench: {args.sims} simulator process(es), publishing {args.publishing_ms} ms, "
        f"security {args.security}, "
        f"{args.seconds:.0f} s window after {args.warmup:.0f} s warm-up, {os.cpu_count()} cores"
    )
    print(
        f"{'northbound':>10} {'scenario':>14} {'offered/s':>10} {'delivered/s':>12} {'CPU %':>7} "
        f"{'per core-s':>11} {'RSS peak':>9} {'steady':>8} {'seq gaps':>9} {'bytes/value':>11} "
        f"{'µs CPU/value':>12} {'load avg':>11}"
    )
    for r in results:
        print(
            f"{r.northbound:>10} {f'{r.tags}x{r.hz:g}Hz':>14} {r.tags * r.hz:>10,.0f} {r.delivered:>12,.0f} "
            f"{r.cpu_s / r.seconds * 100:>7.1f} {r.per_core_s:>11,.0f} {r.rss_peak / 2**20:>7.1f}MB "
            f"{r.rss_steady / 2**20:>6.1f}MB {r.gaps:>4}/{r.repeats:<4} "
            f"{r.bytes_per_value:>11.1f} {1e6 / r.per_core_s if r.per_core_s else 0:>12.2f} "
            f"{r.load[0]:>5.1f}-{r.load[1]:<5.1f}"
        )
    print("(offered: extra tags x Hz; the meter's own ~10 tags come on top; seq gaps/repeats: gaps/repeats)")


if __name__ == "__main__":
    main()
