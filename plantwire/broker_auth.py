"""Broker access from Plantwire's own identities: a Mosquitto password file and ACL file (or amqtt's).

Three roles, each allowed only what it needs (nothing else is allowed: an ACL file denies by default):

- a gateway publishes only below its own `plantwire/v1/<id>/` (status, reply, device data/meta/status)
  and subscribes only to its own `plantwire/v1/<id>/cmd`;
- the platform subscribes to data, status, meta and reply, and publishes `cmd`;
- a viewer (a person's read-only account) subscribes to `plantwire/#` and publishes nothing.

Rules come from topic namespaces (`NAMESPACES`); Sparkplug B (`spBv1.0/<group>/<type>/<node>`) becomes
one more namespace with its own rules per role, without touching the writers.

Client ids: Mosquitto 2.0 lets any authenticated user connect with any client id and kicks the older
connection (a clean session also deletes the older persistent session). Only `use_username_as_clientid`
stops that (measured, see docs/deploy.md): the broker replaces every client id with the username. So each
connection of a service has its own broker username: an identity's `usernames` are its main username
plus one per extra connection (`<username>-cmd` for the command connection), all with its password and
its rules. `MqttSettings.client_usernames` tells the client which username a connection uses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final, Literal, Protocol

from plantwire import wire
from plantwire.sparkplug.topics import NAMESPACE, STATE

Access = Literal["read", "write"]
"""Mosquitto's ACL words: read = subscribe and receive, write = publish."""

PBKDF2_ITERATIONS: Final = 20_000
COMMAND_CONNECTION: Final = "cmd"
SPARKPLUG_CONNECTION: Final = "spb"
"""The gateway's Sparkplug B edge node connection (its Will is the NDEATH: a connection of its own)."""


class Role(StrEnum):
    PLATFORM = "platform"
    GATEWAY = "gateway"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class AclRule:
    access: Access
    topic: str


@dataclass(frozen=True, slots=True)
class Identity:
    """One account at the broker. `gateway_id` is the topic level a gateway identity may use."""

    username: str
    password: str = field(repr=False)
    role: Role
    gateway_id: str | None = None

    def __post_init__(self) -> None:
        if not self.username or any(c in self.username for c in ":#+/ \t\n"):
            raise ValueError(f"MQTT username {self.username!r} must be non-empty without ':#+/' or spaces")
        if not self.password:
            raise ValueError(f"MQTT identity {self.username!r} has an empty password")
        if self.role is Role.GATEWAY:
            if self.gateway_id is None:
                raise ValueError(f"gateway identity {self.username!r} needs its gateway id")
            wire.check_id("gateway", self.gateway_id)

    @property
    def usernames(self) -> tuple[str, ...]:
        """The broker usernames of this identity's connections: the platform and a gateway have three
        (data, commands, Sparkplug B)."""
        if self.role is Role.VIEWER:
            return (self.username,)
        extra = (COMMAND_CONNECTION, SPARKPLUG_CONNECTION)
        return (self.username, *(connection_username(self.username, c) for c in extra))


def connection_username(username: str, connection: str) -> str:
    return f"{username}-{connection}"


class TopicNamespace(Protocol):
    """The topics of one protocol family, per role."""

    def rules(self, identity: Identity) -> Sequence[AclRule]: ...


class PlantwireV1:
    """`plantwire/v1/...`, the wire contract (plantwire.wire)."""

    def rules(self, identity: Identity) -> Sequence[AclRule]:
        if identity.role is Role.PLATFORM:
            reads = [*wire.SUBSCRIPTIONS, wire.REPLY_SUBSCRIPTION]
            return [*(AclRule("read", t) for t in reads), AclRule("write", wire.command_topic("+"))]
        if identity.role is Role.GATEWAY:
            gw = identity.gateway_id
            assert gw is not None
            writes = [
                wire.gateway_status_topic(gw),
                wire.reply_topic(gw),
                *(wire.device_topic(gw, "+", kind) for kind in ("data", "meta", "status")),
            ]
            return [*(AclRule("write", t) for t in writes), AclRule("read", wire.command_topic(gw))]
        return [AclRule("read", "plantwire/#")]


class SparkplugB:
    """`spBv1.0/...` (plantwire.sparkplug.topics): a gateway is the edge node named by its gateway id,
    in any group; the platform is a host application."""

    def rules(self, identity: Identity) -> Sequence[AclRule]:
        ns = NAMESPACE
        if identity.role is Role.PLATFORM:
            return [
                AclRule("read", f"{ns}/#"),
                AclRule("read", f"{STATE}/#"),
                AclRule("write", f"{ns}/+/NCMD/+"),
                AclRule("write", f"{ns}/+/DCMD/+/+"),
                AclRule("write", f"{ns}/{STATE}/+"),
            ]
        if identity.role is Role.GATEWAY:
            node = identity.gateway_id
            writes = [f"{ns}/+/{kind}/{node}" for kind in ("NBIRTH", "NDATA", "NDEATH")]
            writes += [f"{ns}/+/{kind}/{node}/+" for kind in ("DBIRTH", "DDATA", "DDEATH")]
            reads = [f"{ns}/+/NCMD/{node}", f"{ns}/+/DCMD/{node}/+", f"{ns}/{STATE}/+", f"{STATE}/+"]
            return [*(AclRule("write", t) for t in writes), *(AclRule("read", t) for t in reads)]
        return [AclRule("read", f"{ns}/#")]


NAMESPACES: Final[tuple[TopicNamespace, ...]] = (PlantwireV1(), SparkplugB())


def acl_rules(identity: Identity, namespaces: Iterable[TopicNamespace] = NAMESPACES) -> list[AclRule]:
    return [rule for ns in namespaces for rule in ns.rules(identity)]


# --- Mosquitto --------------------------------------------------------------------------------------


def mosquitto_password_hash(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Mosquitto 2's PBKDF2-SHA512 format (`$7$iterations$salt$hash`), as `mosquitto_passwd` writes it."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def mosquitto_password_file(identities: Sequence[Identity]) -> str:
    _check_unique(identities)
    lines = [
        f"{name}:{mosquitto_password_hash(ident.password)}"
        for ident in identities
        for name in ident.usernames
    ]
    return "\n".join(lines) + "\n"


def mosquitto_acl_file(identities: Sequence[Identity]) -> str:
    _check_unique(identities)
    out = ["# Generated by Plantwire from its MQTT identities; regenerate instead of editing.", ""]
    for ident in identities:
        rules = acl_rules(ident)
        for name in ident.usernames:
            out.append(f"user {name}")
            out += [f"topic {rule.access} {rule.topic}" for rule in rules]
            out.append("")
    return "\n".join(out)


@dataclass(frozen=True, slots=True)
class BrokerAuthFiles:
    """Where a broker's generated password file and ACL file are."""

    password_file: Path
    acl_file: Path


def write_mosquitto_auth(directory: Path, identities: Sequence[Identity]) -> BrokerAuthFiles:
    """Write `passwd` and `acl` (mode 0600) into `directory`, replacing older ones atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    files = BrokerAuthFiles(directory / "passwd", directory / "acl")
    write_private(files.password_file, mosquitto_password_file(identities))
    write_private(files.acl_file, mosquitto_acl_file(identities))
    return files


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write a file only its owner can read (created with that mode, then renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    tmp.replace(path)


# --- amqtt (the embedded demo broker) ----------------------------------------------------------------


def amqtt_plugins(identities: Sequence[Identity], password_file: Path) -> dict[str, object]:
    """amqtt's plugin config: anonymous refused, passwords from an argon2 file written here.

    Topic lists stay off: amqtt 0.12.1's topic plugin is awaited inside the broker's broadcast loop, and
    a client that subscribes or leaves meanwhile crashes that broadcast ("dictionary changed size during
    iteration"; measured with the demo), losing the message for every subscriber. Client ids are not
    bound either. So the embedded broker checks who connects, not what they publish (docs/deploy.md).
    """
    from pwdlib.hashers.argon2 import Argon2Hasher

    _check_unique(identities)
    hasher = Argon2Hasher()
    lines = [f"{name}:{hasher.hash(i.password)}" for i in identities for name in i.usernames]
    write_private(password_file, "\n".join(lines) + "\n")
    return {
        "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False},
        "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(password_file)},
    }


# --- credentials the demo keeps -----------------------------------------------------------------------


def new_password() -> str:
    return secrets.token_urlsafe(24)


def load_or_create_identities(path: Path, gateway_id: str) -> list[Identity]:
    """The demo's identities (platform, gateway, viewer) from `path`, created with new passwords once."""
    if path.exists():
        raw = json.loads(path.read_text())
    else:
        raw = {
            "platform": {"username": "platform", "password": new_password()},
            "gateway": {"username": gateway_id, "password": new_password()},
            "viewer": {"username": "viewer", "password": new_password()},
        }
        write_private(path, json.dumps(raw, indent=2) + "\n")
    return [
        Identity(raw["platform"]["username"], raw["platform"]["password"], Role.PLATFORM),
        Identity(raw["gateway"]["username"], raw["gateway"]["password"], Role.GATEWAY, gateway_id),
        Identity(raw["viewer"]["username"], raw["viewer"]["password"], Role.VIEWER),
    ]


def _check_unique(identities: Sequence[Identity]) -> None:
    names = [n for i in identities for n in i.usernames]
    if len(names) != len(set(names)):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"MQTT usernames must be unique, repeated: {', '.join(dup)}")


# Client ids of the services' command connections (platform/plantwire_platform/commands.py and
# gateway/plantwire_gateway/commands.py): under `use_username_as_clientid` each needs its own username.
PLATFORM_COMMAND_CLIENT_PREFIX: Final = "pw-cmd-"
PLATFORM_SPARKPLUG_CLIENT_PREFIX: Final = "pw-spb-"
"""The platform's Sparkplug B host application connection (its Will is its STATE offline)."""


def gateway_command_client_id(gateway_id: str) -> str:
    return f"plantwire-gw-{gateway_id}-cmd"


def gateway_sparkplug_client_id(gateway_id: str) -> str:
    return f"plantwire-gw-{gateway_id}-spb"


def client_usernames(identity: Identity) -> dict[str, str]:
    """`MqttSettings.client_usernames` for a service identity: its other connections' usernames."""
    if identity.role is Role.VIEWER:
        return {}
    if identity.role is Role.PLATFORM:
        return {
            PLATFORM_COMMAND_CLIENT_PREFIX: connection_username(identity.username, COMMAND_CONNECTION),
            PLATFORM_SPARKPLUG_CLIENT_PREFIX: connection_username(identity.username, SPARKPLUG_CONNECTION),
        }
    gw = identity.gateway_id or ""
    return {
        gateway_command_client_id(gw): connection_username(identity.username, COMMAND_CONNECTION),
        gateway_sparkplug_client_id(gw): connection_username(identity.username, SPARKPLUG_CONNECTION),
    }


def client_environment(identity: Identity) -> dict[str, str]:
    """PLANTWIRE_MQTT__* variables that give a service process this identity (never its argv)."""
    return {
        "PLANTWIRE_MQTT__USERNAME": identity.username,
        "PLANTWIRE_MQTT__PASSWORD": identity.password,
        "PLANTWIRE_MQTT__CLIENT_USERNAMES": json.dumps(client_usernames(identity)),
    }
