"""`plantwire gateway`: run the edge gateway (OPC UA devices in, MQTT out)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from plantwire.runner import run_until_signalled

from . import pki_cli
from .outbox import LinkStateError
from .service import run_gateway
from .settings import load_settings, parse_device_flag

HELP = "run the edge gateway: OPC UA devices in, batched MQTT messages out"
DESCRIPTION = """\
Run the edge gateway. It connects to each OPC UA device, browses its variables (tags named by
their browse path below the device's root, e.g. "Spindle/Speed"), subscribes to them, and
publishes batched, sequenced values to MQTT at QoS 1 under plantwire/v1/<gateway>/<device>/...

Every batch is stored in an on-disk outbox (<data-dir>/outbox.sqlite3) before it is published
and removed only when the broker acknowledged it, so broker outages and restarts lose nothing.

Configuration comes from a TOML file (--config; see deploy/gateway.example.toml), overridden by
PLANTWIRE_* environment variables (nested with "__", e.g. PLANTWIRE_MQTT__HOST), overridden by
the flags below. Without a file, --id and --device are enough:

  plantwire gateway --id line-1 --device 'cnc-1=opc.tcp://127.0.0.1:4840#ns=2;s=cnc-1'

Stop with Ctrl-C or SIGTERM: pending values go to the outbox, the gateway status becomes offline.

Server certificates (devices with a security_policy) are trusted with
`plantwire gateway pki list|trust|reject|show-own --data-dir DIR` (see docs/opcua.md).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    tools = parser.add_subparsers(dest="gateway_tool", metavar="{pki}")
    pki_cli.add_arguments(tools.add_parser("pki", help="manage the trust list of server certificates"))
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file")
    parser.add_argument("--id", metavar="ID", help="gateway id (a topic level; default gw-<hostname>)")
    parser.add_argument("--mqtt-host", metavar="HOST", help="MQTT broker host (default 127.0.0.1)")
    parser.add_argument("--mqtt-port", type=int, metavar="PORT", help="MQTT broker port (default 1883)")
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="where the outbox lives (default var/gateway)"
    )
    parser.add_argument(
        "--health-port", type=int, metavar="PORT", help="serve /healthz, /readyz and /metrics on PORT"
    )
    parser.add_argument("--health-host", metavar="HOST", help="address of that endpoint (default 127.0.0.1)")
    parser.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="ID=opc.tcp://HOST:PORT[#ROOT]",
        help="add a device (repeatable); ROOT is a NodeId such as 'ns=2;s=cnc-1' or a browse path "
        "below Objects such as 'cnc-1' (default: the whole Objects folder)",
    )


def run(args: argparse.Namespace) -> int:
    if getattr(args, "gateway_tool", None) == "pki":
        return pki_cli.run(args)
    overrides: dict[str, Any] = {}
    if args.id:
        overrides["id"] = args.id
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    mqtt = {k: v for k, v in (("host", args.mqtt_host), ("port", args.mqtt_port)) if v is not None}
    if mqtt:
        overrides["mqtt"] = mqtt
    health = {k: v for k, v in (("host", args.health_host), ("port", args.health_port)) if v is not None}
    if health:
        overrides["health"] = health
    devices = [parse_device_flag(text) for text in args.device]
    settings = load_settings(args.config, overrides, devices)
    try:
        run_until_signalled(lambda: run_gateway(settings))
    except LinkStateError as err:
        print(f"plantwire gateway: {err}", file=sys.stderr)
        return 1
    return 0
