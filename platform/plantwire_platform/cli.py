"""`plantwire platform`: the ingest, store and API service."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from plantwire.runner import run_until_signalled

HELP = "run the platform: MQTT ingest, time-series store, REST API"
DESCRIPTION = """\
Subscribe to the gateways' messages on the broker (persistent session, QoS 1), store every
value in the time-series store, and serve the REST API (see /api/openapi.json).

Settings come from the environment (PLANTWIRE_MQTT__HOST, PLANTWIRE_HTTP__PORT,
PLANTWIRE_STORE__PATH, ...; see docs/configuration.md); flags override them.

example:
  plantwire platform --mqtt-port 1883 --http-port 8080 --store var/platform/plantwire.sqlite
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mqtt-host", help="broker host (default 127.0.0.1)")
    parser.add_argument("--mqtt-port", type=int, help="broker port (default 1883)")
    parser.add_argument("--http-host", help="address the API listens on (default 127.0.0.1)")
    parser.add_argument("--http-port", type=int, help="API port (default 8080)")
    parser.add_argument("--store", type=Path, help="SQLite file (default var/platform/plantwire.sqlite)")


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags given on the command line, as nested settings."""
    pairs = {
        ("mqtt", "host"): args.mqtt_host,
        ("mqtt", "port"): args.mqtt_port,
        ("http", "host"): args.http_host,
        ("http", "port"): args.http_port,
        ("store", "path"): args.store,
    }
    nested: dict[str, Any] = {}
    for (section, key), value in pairs.items():
        if value is not None:
            nested.setdefault(section, {})[key] = value
    return nested


def run(args: argparse.Namespace) -> int:
    from plantwire_platform.service import HttpPortInUse, run_platform
    from plantwire_platform.settings import PlatformSettings
    from plantwire_platform.store.store_lock import StoreInUse

    settings = PlatformSettings.load(**overrides(args))
    try:
        run_until_signalled(lambda: run_platform(settings))
    except (StoreInUse, HttpPortInUse) as err:  # nothing was touched: one line, no traceback
        print(f"plantwire platform: {err}", file=sys.stderr)
        return 1
    return 0
