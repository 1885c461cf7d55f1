"""`plantwire attach`: attach an OPC UA endpoint to a running gateway, through the platform."""

from __future__ import annotations

import argparse
import sys

from plantwire.cli_text import plural
from plantwire.device_root import guess_root
from plantwire.platform_client import PlatformClient, add_platform_arguments, run_with_platform

SECURITY_KEYS = (
    "security_policy",
    "security_mode",
    "username",
    "password_file",
    "user_certificate",
    "user_private_key",
)
HELP = "attach an OPC UA machine to a running gateway (no restart)"
DESCRIPTION = """\
Attach an OPC UA endpoint to a running gateway. The gateway connects and browses it first (a few
seconds at most); an unreachable endpoint or a root that does not exist is refused and nothing is
kept. Once attached, the device streams at once and is kept across gateway restarts.

Without --root, a server whose Objects folder holds one machine object (a simulator, most single
machines) is attached from that object, so its tags are named like Hydraulics/Flow; give
--root i=85 to attach from Objects itself.

  plantwire sim --profile pump --port 4850            # in another terminal
  plantwire attach opc.tcp://127.0.0.1:4850 --id pump-9
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("endpoint", metavar="opc.tcp://HOST:PORT", help="the machine's OPC UA endpoint")
    parser.add_argument("--gateway", metavar="G", help="gateway id (default: the only online gateway)")
    parser.add_argument("--id", metavar="ID", help="device id (default derived from the endpoint)")
    device = parser.add_argument_group("what to read")
    device.add_argument(
        "--root",
        metavar="NODE",
        help="NodeId or browse path of the device's root (default: the server's only machine object)",
    )
    device.add_argument("--include", action="append", metavar="GLOB", help="tags to include (repeatable)")
    device.add_argument("--exclude", action="append", metavar="GLOB", help="tags to exclude (repeatable)")
    security = parser.add_argument_group("OPC UA security (files are paths on the gateway's host)")
    security.add_argument(
        "--security-policy", metavar="P", help="None, Basic256Sha256, Aes128_Sha256_RsaOaep, ..."
    )
    security.add_argument(
        "--security-mode", metavar="M", help="Sign or SignAndEncrypt (default SignAndEncrypt)"
    )
    security.add_argument("--username", metavar="NAME", help="user name for the session")
    security.add_argument("--password-file", metavar="FILE", help="file holding the password")
    security.add_argument("--user-certificate", metavar="FILE", help="X.509 user certificate")
    security.add_argument("--user-private-key", metavar="FILE", help="its private key")
    security.add_argument(
        "--trust-first-use",
        action="store_true",
        help="trust the server's first certificate (default: explicit)",
    )
    add_platform_arguments(parser)


def request_body(args: argparse.Namespace) -> dict[str, object]:
    """The attach request: what was given, with the default root found when none was."""
    body: dict[str, object] = {"endpoint": args.endpoint}
    for key in ("id", "root", "include", "exclude", *SECURITY_KEYS):
        if getattr(args, key):
            body[key] = getattr(args, key)
    if args.trust_first_use:
        body["trust_server_certificate"] = "first-use"
    if args.root is None and args.endpoint.startswith("opc.tcp://"):
        guess = guess_root(args.endpoint)
        if guess.root is not None:
            body["root"] = guess.root
        else:
            print(
                f"plantwire attach: note: no default root ({guess.reason}); tags are named from "
                "the Objects folder: --root NODE chooses the machine's object",
                file=sys.stderr,
            )
    return body


def attach(platform: PlatformClient, args: argparse.Namespace) -> list[str]:
    gateway = args.gateway or platform.only_gateway()
    result = platform.call("POST", f"/api/gateways/{gateway}/devices", request_body(args))
    root = f" below {result['root']}" if result.get("root") else ""
    return [
        f"attached {result['device']} to {gateway}: {plural(int(result['tags']), 'tag')}{root} "
        f"from {result['endpoint']}"
    ]


def run(args: argparse.Namespace) -> int:
    return run_with_platform("attach", args, lambda platform: attach(platform, args))
