"""`plantwire pki init DIR`: make the CA and certificates for MQTT over TLS (docs/deploy.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plantwire.pki import DEFAULT_CLIENTS, PkiError, init_pki

HELP = "make a CA, a broker certificate and client certificates for MQTT over TLS"
DESCRIPTION = """\
Write a private CA (ca.crt, ca.key), a server certificate for Mosquitto (server.crt, server.key)
naming every --hostname plus localhost/127.0.0.1/::1, and one client certificate per --client
(default: platform, gateway). Keys are written with mode 0600; an existing CA is never replaced.

examples:
  plantwire pki init deploy/pki --hostname mosquitto
  plantwire pki init /etc/plantwire/pki --hostname broker.plant.example --client gw-line-1
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="pki_command", metavar="ACTION", required=True)
    init = sub.add_parser("init", help="create a new CA and its certificates in DIR")
    init.add_argument("directory", type=Path, metavar="DIR")
    init.add_argument("--hostname", action="append", default=[], help="broker host name or IP (repeatable)")
    init.add_argument(
        "--client",
        action="append",
        default=None,
        help=f"client certificate to make (default {DEFAULT_CLIENTS})",
    )
    init.add_argument("--days", type=int, default=825, help="validity of every certificate (default 825)")


def run(args: argparse.Namespace) -> int:
    if args.days < 1:
        print("plantwire pki: --days must be at least 1", file=sys.stderr)
        return 2
    try:
        pki = init_pki(args.directory, args.hostname, args.client or DEFAULT_CLIENTS, args.days)
    except PkiError as err:
        print(f"plantwire pki: {err}", file=sys.stderr)
        return 2
    print(f"wrote CA {pki.ca_file}, server certificate {pki.server_cert} and client certificates")
    return 0
