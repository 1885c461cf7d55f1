"""`plantwire devices`: a table of the gateways' devices and their states."""

from __future__ import annotations

import argparse
import sys

from plantwire.platform_client import PlatformCallError, add_platform_argument, call

HELP = "list gateways, their devices and their states"
DESCRIPTION = "List every gateway the platform knows, with each device's state, endpoint and tag count."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_platform_argument(parser)


def table(gateways: list[dict[str, object]]) -> list[str]:
    rows = [("GATEWAY", "DEVICE", "STATE", "TAGS", "ENDPOINT", "ERROR")]
    for g in gateways:
        devices = g["devices"] or [{"id": "-", "state": "", "tag_count": "", "endpoint": "", "error": None}]
        for d in devices:  # type: ignore[attr-defined]
            rows.append(
                (
                    f"{g['id']} ({g['state']})",
                    str(d["id"]),
                    str(d["state"]),
                    str(d["tag_count"]),
                    str(d["endpoint"] or ""),
                    str(d["error"] or ""),
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def run(args: argparse.Namespace) -> int:
    try:
        gateways = call(args.platform, "GET", "/api/gateways")["gateways"]
    except PlatformCallError as err:
        print(f"plantwire devices: {err}", file=sys.stderr)
        return 1
    for line in table(gateways):
        print(line)
    return 0
