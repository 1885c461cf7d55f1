"""Sparkplug B topic namespace, and the STATE messages of host applications.

    spBv1.0/{group_id}/{NBIRTH|NDATA|NDEATH|NCMD}/{edge_node_id}
    spBv1.0/{group_id}/{DBIRTH|DDATA|DDEATH|DCMD}/{edge_node_id}/{device_id}
    spBv1.0/STATE/{host_id}     Sparkplug 3.0: retained JSON {"online": bool, "timestamp": ms}
    STATE/{host_id}             before 3.0: retained text ONLINE / OFFLINE

All these ids are UTF-8 strings without '+', '/' or '#'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, NamedTuple, get_args

import orjson

NAMESPACE: Final = "spBv1.0"
STATE: Final = "STATE"

MessageType = Literal["NBIRTH", "NDATA", "NDEATH", "NCMD", "DBIRTH", "DDATA", "DDEATH", "DCMD"]
MESSAGE_TYPES: Final[tuple[MessageType, ...]] = get_args(MessageType)
NODE_TYPES: Final = frozenset({"NBIRTH", "NDATA", "NDEATH", "NCMD"})
DEVICE_TYPES: Final = frozenset({"DBIRTH", "DDATA", "DDEATH", "DCMD"})
_RESERVED: Final = frozenset("+/#")


class TopicError(ValueError):
    """A topic or id that the Sparkplug namespace does not allow."""


class Outgoing(NamedTuple):
    """One MQTT publish a session object asks its owner to make."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


def check_sparkplug_id(kind: str, value: str) -> str:
    if not isinstance(value, str) or not value or _RESERVED & set(value):
        raise TopicError(f"{kind} {value!r} must be a non-empty string without '+', '/' or '#'")
    return value


def node_topic(group_id: str, message_type: MessageType, edge_node_id: str) -> str:
    if message_type not in NODE_TYPES:
        raise TopicError(f"{message_type} is not an edge node message type")
    return f"{NAMESPACE}/{group_id}/{message_type}/{edge_node_id}"


def device_topic(group_id: str, message_type: MessageType, edge_node_id: str, device_id: str) -> str:
    if message_type not in DEVICE_TYPES:
        raise TopicError(f"{message_type} is not a device message type")
    return f"{NAMESPACE}/{group_id}/{message_type}/{edge_node_id}/{device_id}"


def state_topic(host_id: str) -> str:
    return f"{NAMESPACE}/{STATE}/{check_sparkplug_id('host id', host_id)}"


def legacy_state_topic(host_id: str) -> str:
    """The pre-3.0 (Sparkplug B 2.2) STATE topic."""
    return f"{STATE}/{check_sparkplug_id('host id', host_id)}"


@dataclass(frozen=True, slots=True)
class SparkplugTopic:
    group_id: str
    message_type: MessageType
    edge_node_id: str
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class StateTopic:
    host_id: str
    legacy: bool = False


def parse_topic(topic: str) -> SparkplugTopic | StateTopic:
    parts = topic.split("/")
    if len(parts) == 2 and parts[0] == STATE:
        return StateTopic(check_sparkplug_id("host id", parts[1]), legacy=True)
    if not parts or parts[0] != NAMESPACE:
        raise TopicError(f"topic {topic!r} is not in the {NAMESPACE} namespace")
    if len(parts) == 3 and parts[1] == STATE:
        return StateTopic(check_sparkplug_id("host id", parts[2]))
    if len(parts) not in (4, 5) or parts[2] not in MESSAGE_TYPES:
        raise TopicError(f"topic {topic!r} is not a Sparkplug B message topic")
    kind: MessageType = parts[2]
    if (len(parts) == 5) != (kind in DEVICE_TYPES):
        raise TopicError(
            f"topic {topic!r}: {kind} {'needs' if kind in DEVICE_TYPES else 'takes no'} device id"
        )
    return SparkplugTopic(
        group_id=check_sparkplug_id("group id", parts[1]),
        message_type=kind,
        edge_node_id=check_sparkplug_id("edge node id", parts[3]),
        device_id=check_sparkplug_id("device id", parts[4]) if len(parts) == 5 else None,
    )


# ---------------------------------------------------------------------------------------------
# STATE payloads


@dataclass(frozen=True, slots=True)
class HostState:
    online: bool
    timestamp: int | None
    """Milliseconds; None for the pre-3.0 text form, which has none."""


def encode_state(online: bool, timestamp: int) -> bytes:
    return orjson.dumps({"online": online, "timestamp": timestamp})


def decode_state(payload: bytes, *, legacy: bool = False) -> HostState:
    if legacy:
        text = payload.strip().decode("ascii", errors="replace")
        if text not in ("ONLINE", "OFFLINE"):
            raise TopicError(f"legacy STATE payload must be ONLINE or OFFLINE, got {text[:20]!r}")
        return HostState(text == "ONLINE", None)
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as err:
        raise TopicError(f"STATE payload is not JSON: {err}") from err
    if (
        not isinstance(obj, dict)
        or type(obj.get("online")) is not bool
        or type(obj.get("timestamp")) is not int
    ):
        raise TopicError('STATE payload must be {"online": bool, "timestamp": int}')
    return HostState(obj["online"], obj["timestamp"])
