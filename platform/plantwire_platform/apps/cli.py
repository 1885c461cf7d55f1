"""`plantwire app`: tools for app authors (today: `plantwire app new NAME`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "create a new platform app (a folder with a manifest, code and a test)"
DESCRIPTION = """\
Scaffold an app for the platform's app host: NAME/manifest.toml, NAME/app.py and a test that
replays points through it with no broker (run it with pytest). The platform loads apps from
its apps folder (PLANTWIRE_APPS__PATH, default ./apps); see docs/apps.md.

example:
  plantwire app new spindle_watch --dir apps && pytest apps/spindle_watch
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = sub.add_parser("new", help="create an app folder with a passing test")
    new.add_argument("name", help="app id: lower case letters, digits and _")
    new.add_argument("--dir", type=Path, default=Path("apps"), help="folder of app folders (default apps)")


def run(args: argparse.Namespace) -> int:
    from plantwire_platform.apps.scaffold import ScaffoldError, new_app

    try:
        target = new_app(args.name, args.dir)
    except ScaffoldError as err:
        print(f"plantwire app new: {err}", file=sys.stderr)
        return 2
    print(f"created {target}/ (manifest.toml, app.py, test_app.py)")
    print(f"test it:  pytest {target}")
    return 0
