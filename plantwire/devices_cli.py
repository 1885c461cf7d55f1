"""`plantwire devices`: a table of the gateways' devices and their states."""

from __future__ import annotations

import argparse
from typing import Any, Final

from plantwire.cli_text import plural
from plantwire.platform_client import PlatformClient, add_platform_arguments, run_with_platform

HELP = "list gateways, their devices and their states"
DESCRIPTION = (
    "List every gateway the platform knows, with each device's state, endpoint and tag count "
    "(read page by page, however many there are)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_platform_arguments(parser)


def table(gateways: list[dict[str, Any]]) -> list[str]:
    rows = [("GATEWAY", "DEVICE", "STATE", "TAGS", "ENDPOINT", "ERROR")]
    for g in gateways:
        devices = g["devices"] or [{"id": "-", "state": "", "tag_count": "", "endpoint": "", "error": None}]
        for d in devices:
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


def summary(gateways: list[dict[str, Any]]) -> str:
    """`1 gateway (1 online), 5 devices (5 online)`."""
    devices = [d for g in gateways for d in g["devices"]]
    gw_online = sum(g["state"] == "online" for g in gateways)
    dev_online = sum(d["state"] == "online" for d in devices)
    return (
        f"{plural(len(gateways), 'gateway')} ({gw_online} online), "
        f"{plural(len(devices), 'device')} ({dev_online} online)"
    )


LISTED: Final = 100
"""Devices a gateway lists with itself (the API's default); a gateway with more is paged through."""


def _row(device: dict[str, Any]) -> dict[str, Any]:
    """A device of `GET /api/devices` as `GET /api/gateways` lists it (a detached one says so)."""
    detached = device["state"] == "offline" and device["error"] == "detached"
    return {**device, "state": "detached", "error": None} if detached else device


def devices(platform: PlatformClient) -> list[str]:
    gateways = platform.gateways(devices=LISTED)
    for g in gateways:
        if g.get("device_count", 0) > len(g["devices"]):
            g["devices"] = [_row(d) for d in platform.devices(gateway=g["id"])]
    return [*table(gateways), "", summary(gateways)] if gateways else ["no gateway has reported yet"]


def run(args: argparse.Namespace) -> int:
    return run_with_platform("devices", args, devices)
