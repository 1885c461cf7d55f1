"""`plantwire mqtt-auth DIR`: write Mosquitto's password file and ACL file from Plantwire's identities."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from plantwire.broker_auth import Identity, Role, write_mosquitto_auth

HELP = "write Mosquitto's password and ACL files for the platform, gateways and viewers"
DESCRIPTION = """\
Write DIR/passwd (PBKDF2-SHA512, as mosquitto_passwd does) and DIR/acl, both mode 0600, for
Mosquitto's `password_file` and `acl_file` (with `use_username_as_clientid true`). Each identity is
USER:PASSWORD_VARIABLE: the password is read from that environment variable, never from the
command line. A gateway also names its gateway id: USER:PASSWORD_VARIABLE:GATEWAY_ID.

  a gateway   publishes only below plantwire/v1/<id>/, subscribes only to plantwire/v1/<id>/cmd
  platform    subscribes to data, status, meta and reply; publishes cmd
  viewer      subscribes to plantwire/#; publishes nothing

example:
  MQTT_PLATFORM_PASSWORD=... MQTT_GATEWAY_PASSWORD=... MQTT_VIEWER_PASSWORD=... \\
  plantwire mqtt-auth /auth --platform platform:MQTT_PLATFORM_PASSWORD \\
      --gateway gateway:MQTT_GATEWAY_PASSWORD:line-1 --viewer viewer:MQTT_VIEWER_PASSWORD
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, metavar="DIR")
    parser.add_argument("--platform", action="append", default=[], metavar="USER:PASSWORD_VAR")
    parser.add_argument("--gateway", action="append", default=[], metavar="USER:PASSWORD_VAR:GATEWAY_ID")
    parser.add_argument("--viewer", action="append", default=[], metavar="USER:PASSWORD_VAR")


def _identity(role: Role, spec: str) -> Identity:
    parts = spec.split(":")
    want = 3 if role is Role.GATEWAY else 2
    if len(parts) != want:
        shape = "USER:PASSWORD_VAR:GATEWAY_ID" if role is Role.GATEWAY else "USER:PASSWORD_VAR"
        raise ValueError(f"--{role.value} {spec!r}: expected {shape}")
    password = os.environ.get(parts[1], "")
    if not password:
        raise ValueError(f"--{role.value} {parts[0]}: environment variable {parts[1]} is not set")
    return Identity(parts[0], password, role, parts[2] if role is Role.GATEWAY else None)


def run(args: argparse.Namespace) -> int:
    try:
        identities = [
            _identity(role, spec)
            for role, specs in (
                (Role.PLATFORM, args.platform),
                (Role.GATEWAY, args.gateway),
                (Role.VIEWER, args.viewer),
            )
            for spec in specs
        ]
        if not identities:
            raise ValueError("name at least one identity (--platform, --gateway, --viewer)")
        files = write_mosquitto_auth(args.directory, identities)
    except (ValueError, OSError) as err:
        print(f"plantwire mqtt-auth: {err}", file=sys.stderr)
        return 2
    print(f"wrote {files.password_file} and {files.acl_file} for {len(identities)} identities")
    return 0
