"""`plantwire detach`: stop a device that was attached at runtime."""

from __future__ import annotations

import argparse
import sys

from plantwire.platform_client import PlatformCallError, add_platform_argument, call

HELP = "detach a device that was attached at runtime"
DESCRIPTION = "Stop the gateway's session with a device attached by `plantwire attach` and forget it."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("device", metavar="DEVICE", help="device id")
    parser.add_argument("--gateway", metavar="G", help="gateway id (default: the device's gateway)")
    add_platform_argument(parser)


def run(args: argparse.Namespace) -> int:
    try:
        gateway = args.gateway or call(args.platform, "GET", f"/api/devices/{args.device}")["gateway"]
        call(args.platform, "DELETE", f"/api/gateways/{gateway}/devices/{args.device}", user=args.user)
    except PlatformCallError as err:
        print(f"plantwire detach: {err}", file=sys.stderr)
        return 1
    print(f"detached {args.device} from {gateway}")
    return 0
