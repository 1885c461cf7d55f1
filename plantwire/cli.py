"""The `plantwire` command: one entry point, a subcommand per part of the system."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Protocol

from plantwire import __version__
from plantwire.config import ConfigError
from plantwire.extras import MissingExtraError
from plantwire.logs import configure_logging


class Command(Protocol):
    """What each subcommand's module provides."""

    HELP: str
    DESCRIPTION: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


COMMANDS: dict[str, str] = {
    "demo": "plantwire.demo",
    "sim": "plantwire_sims.cli",
    "gateway": "plantwire_gateway.cli",
    "platform": "plantwire_platform.cli",
    "app": "plantwire_platform.apps.cli",
    "attach": "plantwire.attach_cli",
    "detach": "plantwire.detach_cli",
    "devices": "plantwire.devices_cli",
    "token": "plantwire.token_cli",
    "ids": "plantwire.ids_cli",
    "pki": "plantwire.pki_cli",
    "mqtt-auth": "plantwire.broker_auth_cli",
}


def chosen_command(argv: list[str]) -> str | None:
    """The subcommand named in `argv` (the first word that is one), None for none (`--help`)."""
    return next((word for word in argv if word in COMMANDS), None)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, that subcommand's module is the only one imported.

    A service is started as `plantwire gateway ...`: importing every other command's module (the
    platform's web stack, the simulators, the Sparkplug codec) would only cost start-up time and
    memory (tens of MB of resident memory for the gateway). The other subcommands stay known by
    name, so a typo's error still lists them.
    """
    parser = argparse.ArgumentParser(
        prog="plantwire",
        description="Plantwire connects OPC UA machines through an edge gateway and MQTT to a platform "
        "that stores, serves and acts on their data.",
    )
    parser.add_argument("--version", action="version", version=f"plantwire {__version__}")
    parser.add_argument("--log-level", default=None, help="debug, info, warning or error (default: info)")
    parser.add_argument(
        "--log-format", choices=["console", "json"], default=None, help="default: console on a terminal"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name)
            continue
        module: Command = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(chosen_command(words))
    args = parser.parse_args(words)
    configure_logging(args.log_level, args.log_format)
    try:
        return int(args._module.run(args) or 0)
    except ConfigError as err:
        print(f"plantwire {args.command}: configuration error: {err}", file=sys.stderr)
        return 2
    except MissingExtraError as err:
        print(f"plantwire {args.command}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
