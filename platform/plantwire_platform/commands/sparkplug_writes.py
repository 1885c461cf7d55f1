"""REST and app writes to a device behind a Sparkplug B edge node: a DCMD, confirmed by its DDATA.

A device the platform learned as Sparkplug host (gateway id `<group>.<edge node>`, endpoint
`sparkplug://<group>/<edge node>/<device>`) is written with a DCMD on
`spBv1.0/<group>/DCMD/<edge node>/<device>`, aliased and typed as its DBIRTH said, published by
the platform's Sparkplug connection (the host identity). Sparkplug has no reply to a command, so
the answer says what the platform knows:

- `confirmed`: a value of the tag equal to the one written (Float compared at 32 bits) was
  stored within the timeout after the DCMD left (DDATA, or a new DBIRTH): HTTP 200;
- not confirmed: the DCMD was published (QoS 0, as the specification says) but no such value
  came back in time (the edge node refused or ignored it, or reports the value later, or the
  value did not change so report by exception sent nothing): HTTP 202.

Nothing is sent when the platform can tell in advance that the write cannot work: the tag is
unknown or marked `readOnly` in the device's current DBIRTH, the device or its node is offline,
no birth was seen since the platform started (then it asks the node for a rebirth), or the
Sparkplug connection is down. Method calls and browse have no Sparkplug counterpart.

This module knows nothing of MQTT: the ingest room's `SparkplugIngest` is the `DcmdSender`, the
live bus the `LiveFeed` (both by shape, so the commands room imports neither).
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Final, Protocol

from plantwire import wire
from plantwire_platform.commands.errors import (
    CommandError,
    CommandsUnavailable,
    InvalidCommand,
    NotWritable,
    UnknownTarget,
    UnsupportedCommand,
)
from plantwire_platform.store.model import DeviceRecord

ENDPOINT_PREFIX: Final = "sparkplug://"
"""The endpoint the Sparkplug ingest gives the devices it learns (ingest.sparkplug_ingest)."""
DEFAULT_CONFIRM_S: Final = 5.0
"""How long a write waits for the DDATA that confirms it, unless the request says `timeout`."""
_FEED_MAX: Final = 256

# What `DcmdSender.send_dcmd` answers instead of sending -> (error class, code, text)
_REFUSALS: Final[dict[str, tuple[type[CommandError], str, str]]] = {
    "not_connected": (
        CommandsUnavailable, "broker_unavailable",
        "the platform's Sparkplug connection to the broker is down; try again shortly",
    ),
    "node_offline": (
        CommandsUnavailable, "device_offline",
        "the Sparkplug edge node is offline (NDEATH); nothing was sent",
    ),
    "device_offline": (
        CommandsUnavailable, "device_offline",
        "the Sparkplug device is offline (DDEATH, or no DBIRTH since its node's NBIRTH); nothing was sent",
    ),
    "birth_missing": (
        CommandsUnavailable, "birth_missing",
        "the platform has seen no birth of this edge node since it started; it asked the node for a "
        "rebirth: try again in a few seconds",
    ),
    "unknown_metric": (
        UnknownTarget, "unknown_tag",
        "the device's current DBIRTH has no such metric",
    ),
    "read_only": (NotWritable, "tag_not_writable", "the device's DBIRTH marks the metric readOnly"),
    "invalid_value": (
        InvalidCommand, "invalid_value",
        "the value cannot be encoded as the metric's Sparkplug datatype",
    ),
}  # fmt: skip


class DcmdSender(Protocol):
    """The platform's Sparkplug host connection (`ingest.sparkplug_ingest.SparkplugIngest`)."""

    def send_dcmd(
        self, group_id: str, edge_node_id: str, device_id: str, metric: str, value: wire.Value
    ) -> str | None:
        """Publish the DCMD; None when sent, else why not (a key of `_REFUSALS`)."""
        ...


class _Point(Protocol):
    @property
    def value(self) -> wire.JsonValue: ...

    @property
    def ts(self) -> int: ...


class _Feed(Protocol):
    async def next_batch(self) -> Sequence[_Point]: ...


class LiveFeed(Protocol):
    """Points as they are committed (`ingest.live_bus.LiveBus`)."""

    def subscribe(self, device: str, tag: str, maxsize: int) -> AbstractContextManager[_Feed]: ...


@dataclass(frozen=True, slots=True)
class SparkplugTarget:
    group_id: str
    edge_node_id: str
    device_id: str

    @property
    def gateway(self) -> str:
        return f"{self.group_id}.{self.edge_node_id}"


def sparkplug_target(record: DeviceRecord) -> SparkplugTarget | None:
    """Where a DCMD for the device goes, or None for a device of a Plantwire gateway.

    A device is Sparkplug's only when its endpoint and its owner agree: the endpoint alone is what
    a gateway's meta says, and a gateway may not steer writes to another node's devices.
    """
    endpoint = record.endpoint or ""
    if not endpoint.startswith(ENDPOINT_PREFIX):
        return None
    parts = endpoint.removeprefix(ENDPOINT_PREFIX).split("/")
    if len(parts) == 2 and record.gateway == f"{parts[0]}.{parts[1]}" and record.id == parts[1]:
        raise UnsupportedCommand(
            f"{record.id!r} holds a Sparkplug edge node's own metrics; writing them (NCMD) is not "
            "supported, only device metrics (DCMD)",
            "not_supported",
        )
    if len(parts) != 3 or record.gateway != f"{parts[0]}.{parts[1]}" or record.id != parts[2]:
        return None
    return SparkplugTarget(*parts)


def not_supported(what: str, device: str) -> UnsupportedCommand:
    return UnsupportedCommand(
        f"device {device!r} is behind a Sparkplug B edge node, which has no {what}; only writes "
        "(DCMD) are supported",
        "not_supported",
    )


@dataclass(frozen=True, slots=True)
class DcmdDone:
    """A write sent as DCMD, and whether the device confirmed it."""

    id: str
    """The audit's command id (a DCMD carries none; a retry with the same id sends again)."""
    gateway: str
    device: str
    tag: str
    requested: wire.Value
    confirmed: bool
    value: wire.JsonValue
    """The confirming value as stored (None when not confirmed)."""
    value_ts: int | None
    rtt_ms: float | None
    """From publishing the DCMD to storing the confirming value (None when not confirmed)."""

    @property
    def http_status(self) -> int:
        return 200 if self.confirmed else 202


def _float32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def confirms(requested: wire.Value, data_type: str | None, reported: wire.JsonValue) -> bool:
    """Whether a stored value is the written one (a Float as the 32 bits the device holds)."""
    if isinstance(requested, bool) or isinstance(reported, bool):
        return type(requested) is type(reported) and requested == reported
    if data_type == "Float" and isinstance(requested, int | float) and isinstance(reported, int | float):
        return _float32(float(requested)) == _float32(float(reported))
    return reported == requested


class SparkplugWrites:
    """Send a checked write as DCMD and wait for its confirmation (see module doc)."""

    def __init__(self, sender: DcmdSender, live: LiveFeed) -> None:
        self._sender = sender
        self._live = live

    async def write(
        self,
        target: SparkplugTarget,
        tag: str,
        value: wire.Value,
        data_type: str | None,
        timeout_s: float,
        command_id: str,
    ) -> DcmdDone:
        """Raises the `CommandError` of `_REFUSALS` when nothing was sent."""
        device = target.device_id
        with self._live.subscribe(device, tag, _FEED_MAX) as feed:  # before sending: miss nothing
            refusal = self._sender.send_dcmd(target.group_id, target.edge_node_id, device, tag, value)
            if refusal is not None:
                error_class, code, text = _REFUSALS.get(
                    refusal, (CommandsUnavailable, "broker_unavailable", refusal)
                )
                raise error_class(f"{text} (device {device!r}, tag {tag!r})", code)
            sent = time.perf_counter()
            try:
                async with asyncio.timeout(timeout_s):
                    while True:
                        for point in await feed.next_batch():
                            if confirms(value, data_type, point.value):
                                rtt = round((time.perf_counter() - sent) * 1000, 3)
                                return DcmdDone(
                                    command_id, target.gateway, device, tag, value, True,
                                    point.value, point.ts, rtt,
                                )  # fmt: skip
            except TimeoutError:
                pass
        return DcmdDone(command_id, target.gateway, device, tag, value, False, None, None, None)
