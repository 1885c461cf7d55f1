"""`plantwire gateway pki list|trust|reject|show-own`: the gateway's trust list from the command line.

Works on the files under `<data-dir>/pki/` while the gateway runs; a device waiting on an untrusted
certificate retries within a second of `trust`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .pki import Folder, Pki, PkiError, application_uri


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=argparse.SUPPRESS, metavar="DIR", help="the gateway's data dir"
    )
    actions = parser.add_subparsers(dest="pki_action", metavar="ACTION", required=True)
    actions.add_parser("list", help="list trusted and rejected server certificates")
    for name, what in (("trust", "trust a rejected certificate"), ("reject", "stop trusting a certificate")):
        sub = actions.add_parser(name, help=what)
        sub.add_argument(
            "cert", metavar="NAME|THUMBPRINT|FILE", help="file name, thumbprint (prefix) or a file"
        )
    actions.add_parser("show-own", help="print the gateway's own certificate path (give it to the server)")


def run(args: argparse.Namespace) -> int:
    pki = Pki(getattr(args, "data_dir", None) or Path("var/gateway"))
    try:
        if args.pki_action == "list":
            entries = pki.entries()
            for e in entries:
                print(f"{e.folder:8}  {e.name}  {e.subject}  valid until {e.not_after}")
            if not entries:
                print(f"no server certificates under {pki.root}")
        elif args.pki_action == "show-own":
            import asyncio

            cert, _ = asyncio.run(pki.ensure_own(application_uri()))
            print(cert)
        else:
            folder: Folder = "trusted" if args.pki_action == "trust" else "rejected"
            given = Path(args.cert)
            path = pki.add(given, folder) if given.is_file() else pki.move(args.cert, folder)
            print(f"{args.pki_action}ed: {path}")
    except PkiError as err:
        print(f"plantwire gateway pki: {err}", file=sys.stderr)
        return 1
    return 0
