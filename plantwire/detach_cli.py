"""`plantwire detach`: stop a device that was attached at runtime."""

from __future__ import annotations

import argparse

from plantwire.platform_client import PlatformClient, add_platform_arguments, run_with_platform

HELP = "detach a device that was attached at runtime"
DESCRIPTION = "Stop the gateway's session with a device attached by `plantwire attach` and forget it."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("device", metavar="DEVICE", help="device id")
    parser.add_argument("--gateway", metavar="G", help="gateway id (default: the device's gateway)")
    add_platform_arguments(parser)


def detach(platform: PlatformClient, args: argparse.Namespace) -> list[str]:
    gateway = args.gateway or platform.call("GET", f"/api/devices/{args.device}")["gateway"]
    platform.call("DELETE", f"/api/gateways/{gateway}/devices/{args.device}")
    return [f"detached {args.device} from {gateway}"]


def run(args: argparse.Namespace) -> int:
    return run_with_platform("detach", args, lambda platform: detach(platform, args))
