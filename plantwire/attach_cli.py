"""`plantwire attach`: attach an OPC UA endpoint to a running gateway, through the platform."""

from __future__ import annotations

import argparse
import sys

from plantwire.platform_client import PlatformCallError, add_platform_argument, call, only_gateway

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

  plantwire sim --profile pump --port 4850            # in another terminal
  plantwire attach opc.tcp://127.0.0.1:4850 --id pump-9
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("endpoint", metavar="opc.tcp://HOST:PORT", help="the machine's OPC UA endpoint")
    parser.add_argument("--gateway", metavar="G", help="gateway id (default: the only online gateway)")
    parser.add_argument("--id", metavar="ID", help="device id (default derived from the endpoint)")
    parser.add_argument("--root", metavar="NODE", help="NodeId or browse path of the device's root")
    parser.add_argument("--include", action="append", metavar="GLOB", help="tags to include (repeatable)")
    parser.add_argument("--exclude", action="append", metavar="GLOB", help="tags to exclude (repeatable)")
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
    add_platform_argument(parser)


def run(args: argparse.Namespace) -> int:
    body: dict[str, object] = {"endpoint": args.endpoint}
    for key in ("id", "root", "include", "exclude", *SECURITY_KEYS):
        if getattr(args, key):
            body[key] = getattr(args, key)
    if args.trust_first_use:
        body["trust_server_certificate"] = "first-use"
    try:
        gateway = args.gateway or only_gateway(args.platform)
        result = call(args.platform, "POST", f"/api/gateways/{gateway}/devices", body, args.user)
    except PlatformCallError as err:
        print(f"plantwire attach: {err}", file=sys.stderr)
        return 1
    print(f"attached {result['device']} to {gateway}: {result['tags']} tags from {result['endpoint']}")
    return 0
