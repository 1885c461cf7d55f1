"""Wire contract v1: the MQTT topics and payloads shared by the gateway and the platform.

This module is the contract. Both sides import it; nothing else builds topics or payloads.
`docs/wire.md` describes the same thing for people and for other implementations.

Topics (all under ``plantwire/v1``)::

    plantwire/v1/{gateway}/status            retained; gateway online/offline (offline is the last will)
    plantwire/v1/{gateway}/{device}/status   retained; device connection state
    plantwire/v1/{gateway}/{device}/meta     retained; the device's tags
    plantwire/v1/{gateway}/{device}/data     QoS 1; batches of sampled values

Timestamps on the wire are integers: microseconds since the Unix epoch, UTC. That keeps the
OPC UA source timestamp exact, costs nothing to encode, and sorts as a number.

Decoding is hand-written rather than model-based because it sits on the ingest hot path
(one call per message, tens of thousands of values a second); every rejection raises
`WireError` with a message that says which field was wrong.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

VERSION: Final = 1
ROOT: Final = f"plantwire/v{VERSION}"

MAX_PAYLOAD_BYTES: Final = 1_048_576
"""Largest message either side accepts; the gateway splits batches well below it."""
MAX_VALUES_PER_MESSAGE: Final = 5_000
MAX_STRING_VALUE: Final = 4_096
MAX_INT: Final = 2**63 - 1
"""Integers must fit a signed 64-bit column; JSON allows more, stores do not."""
MAX_TS: Final = 253_402_300_799_999_999
"""9999-12-31T23:59:59.999999Z: the last instant an ISO 8601 date can show."""

STATUS_GOOD: Final = 0
"""OPC UA StatusCode Good. Any other code is carried through unchanged (e.g. 0x80000000 Bad)."""
STATUS_BAD_NO_COMMUNICATION: Final = 0x80310000
"""OPC UA BadNoCommunication: what a tag reports while its device is unreachable."""

_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

Value = float | int | bool | str | None
MessageKind = Literal["data", "meta", "status"]
DeviceState = Literal["connecting", "online", "offline"]
GatewayState = Literal["online", "offline"]


class WireError(ValueError):
    """A topic or payload that does not follow the contract."""


def now_us() -> int:
    """Current time as wire timestamp (µs since the epoch, UTC)."""
    return time.time_ns() // 1_000


def check_id(kind: str, value: str) -> str:
    """Gateway and device ids become topic levels, so they must be short and plain."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise WireError(
            f"{kind} id {value!r} is not valid: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return value


# ---------------------------------------------------------------------------------------------
# Topics


def gateway_status_topic(gateway: str) -> str:
    return f"{ROOT}/{gateway}/status"


def device_topic(gateway: str, device: str, kind: MessageKind) -> str:
    return f"{ROOT}/{gateway}/{device}/{kind}"


SUBSCRIPTIONS: Final = (
    f"{ROOT}/+/status",
    f"{ROOT}/+/+/status",
    f"{ROOT}/+/+/meta",
    f"{ROOT}/+/+/data",
)
"""Topic filters a platform subscribes to."""


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic. `device` is None for a gateway's own status topic."""

    gateway: str
    device: str | None
    kind: MessageKind


def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) < 4 or f"{parts[0]}/{parts[1]}" != ROOT:
        raise WireError(f"topic {topic!r} is not under {ROOT}/")
    if len(parts) == 4 and parts[3] == "status":
        return Topic(check_id("gateway", parts[2]), None, "status")
    if len(parts) == 5 and parts[4] in ("data", "meta", "status"):
        kind: MessageKind = parts[4]  # type: ignore[assignment]
        return Topic(check_id("gateway", parts[2]), check_id("device", parts[3]), kind)
    raise WireError(f"topic {topic!r} is not a v{VERSION} data, meta or status topic")


# ---------------------------------------------------------------------------------------------
# Payloads


@dataclass(frozen=True, slots=True)
class Sample:
    """One sampled value: tag name, source timestamp (µs), value, OPC UA status code."""

    tag: str
    ts: int
    value: Value
    status: int = STATUS_GOOD


@dataclass(frozen=True, slots=True)
class DataBatch:
    """Many values of one device, numbered by the device's monotonically increasing `seq`.

    `seq` starts at 1 and grows by one per message; a receiver that sees a jump knows
    exactly how many messages it has not seen. `sent` is when the gateway made the batch.
    """

    seq: int
    sent: int
    samples: list[Sample]


@dataclass(frozen=True, slots=True)
class TagInfo:
    """What `meta` says about one tag."""

    tag: str
    node_id: str
    data_type: str
    unit: str | None = None
    description: str | None = None
    writable: bool = False
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True, slots=True)
class DeviceMeta:
    endpoint: str
    root: str
    tags: list[TagInfo]
    sent: int = field(default_factory=now_us)


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    state: DeviceState
    since: int
    endpoint: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    state: GatewayState
    since: int
    version: str = ""


# --- encoding ---------------------------------------------------------------------------------


def encode_data(batch: DataBatch) -> bytes:
    return orjson.dumps(
        {
            "seq": batch.seq,
            "sent": batch.sent,
            "values": [{"tag": s.tag, "ts": s.ts, "v": s.value, "q": s.status} for s in batch.samples],
        }
    )


def encode_meta(meta: DeviceMeta) -> bytes:
    tags = []
    for t in meta.tags:
        item: dict[str, Any] = {
            "tag": t.tag,
            "node_id": t.node_id,
            "data_type": t.data_type,
            "unit": t.unit,
            "description": t.description,
            "writable": t.writable,
        }
        if t.low is not None or t.high is not None:
            item["range"] = [t.low, t.high]
        tags.append(item)
    return orjson.dumps({"endpoint": meta.endpoint, "root": meta.root, "sent": meta.sent, "tags": tags})


def encode_device_status(status: DeviceStatus) -> bytes:
    return orjson.dumps(
        {"state": status.state, "since": status.since, "endpoint": status.endpoint, "error": status.error}
    )


def encode_gateway_status(status: GatewayStatus) -> bytes:
    return orjson.dumps({"state": status.state, "since": status.since, "version": status.version})


# --- decoding ---------------------------------------------------------------------------------


def _load_object(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError(f"payload of {len(payload)} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}")
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as err:
        raise WireError(f"payload is not valid JSON: {err}") from err
    if not isinstance(obj, dict):
        raise WireError("payload must be a JSON object")
    return obj


def _int(obj: dict[str, Any], key: str, where: str = "") -> int:
    value = obj.get(key)
    if type(value) is not int or not 0 <= value <= MAX_INT:
        raise WireError(f"{where}{key!r} must be a non-negative 64-bit integer, got {value!r}")
    return value


def _opt_str(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise WireError(f"{where}{key!r} must be a string or null")
    return value


def _str(obj: dict[str, Any], key: str, where: str = "") -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"{where}{key!r} must be a non-empty string")
    return value


def decode_data(payload: bytes) -> DataBatch:
    obj = _load_object(payload)
    seq = _int(obj, "seq")
    if seq == 0:
        raise WireError("'seq' starts at 1")
    sent = _int(obj, "sent")
    values = obj.get("values")
    if not isinstance(values, list):
        raise WireError("'values' must be a list")
    if len(values) > MAX_VALUES_PER_MESSAGE:
        raise WireError(f"'values' has {len(values)} items; at most {MAX_VALUES_PER_MESSAGE} are allowed")
    samples = []
    for i, item in enumerate(values):
        if not isinstance(item, dict):
            raise WireError(f"values[{i}] must be an object")
        tag = item.get("tag")
        ts = item.get("ts")
        v = item.get("v")
        q = item.get("q", STATUS_GOOD)
        if not isinstance(tag, str) or not tag or len(tag) > 256:
            raise WireError(f"values[{i}].tag must be a non-empty string of at most 256 characters")
        if type(ts) is not int or not 0 <= ts <= MAX_TS:
            raise WireError(f"values[{i}].ts must be an integer from 0 to {MAX_TS} (µs since epoch)")
        if type(q) is not int or not 0 <= q <= 0xFFFFFFFF:
            raise WireError(f"values[{i}].q must be an OPC UA status code (uint32)")
        if isinstance(v, str):
            if len(v) > MAX_STRING_VALUE:
                raise WireError(f"values[{i}].v is a string longer than {MAX_STRING_VALUE}")
        elif type(v) is int:
            if not -MAX_INT - 1 <= v <= MAX_INT:
                raise WireError(f"values[{i}].v is an integer outside the signed 64-bit range")
        elif not (v is None or isinstance(v, float | bool)):
            raise WireError(f"values[{i}].v must be a number, boolean, string or null")
        samples.append(Sample(tag, ts, v, q))
    return DataBatch(seq, sent, samples)


def decode_meta(payload: bytes) -> DeviceMeta:
    obj = _load_object(payload)
    tags_raw = obj.get("tags")
    if not isinstance(tags_raw, list):
        raise WireError("'tags' must be a list")
    tags = []
    for i, t in enumerate(tags_raw):
        where = f"tags[{i}]."
        if not isinstance(t, dict):
            raise WireError(f"tags[{i}] must be an object")
        low = high = None
        rng = t.get("range")
        if rng is not None:
            if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(x, int | float) for x in rng)):
                raise WireError(f"{where}range must be [low, high]")
            low, high = float(rng[0]), float(rng[1])
        writable = t.get("writable", False)
        if not isinstance(writable, bool):
            raise WireError(f"{where}writable must be a boolean")
        tags.append(
            TagInfo(
                tag=_str(t, "tag", where),
                node_id=_str(t, "node_id", where),
                data_type=_str(t, "data_type", where),
                unit=_opt_str(t, "unit", where),
                description=_opt_str(t, "description", where),
                writable=writable,
                low=low,
                high=high,
            )
        )
    return DeviceMeta(
        endpoint=_str(obj, "endpoint"), root=_str(obj, "root"), tags=tags, sent=_int(obj, "sent")
    )


def decode_device_status(payload: bytes) -> DeviceStatus:
    obj = _load_object(payload)
    state = obj.get("state")
    if state not in ("connecting", "online", "offline"):
        raise WireError("'state' must be 'connecting', 'online' or 'offline'")
    return DeviceStatus(
        state=state,
        since=_int(obj, "since"),
        endpoint=_str(obj, "endpoint"),
        error=_opt_str(obj, "error", ""),
    )


def decode_gateway_status(payload: bytes) -> GatewayStatus:
    obj = _load_object(payload)
    state = obj.get("state")
    if state not in ("online", "offline"):
        raise WireError("'state' must be 'online' or 'offline'")
    version = obj.get("version", "")
    return GatewayStatus(state=state, since=_int(obj, "since"), version=str(version))
