"""Wire contract v1: the MQTT topics and payloads shared by the gateway and the platform.

This module is the contract. Both sides import it; nothing else builds topics or payloads.
`docs/wire.md` describes the same thing for people and for other implementations.

Topics (all under ``plantwire/v1``)::

    plantwire/v1/{gateway}/status            retained; gateway online/offline (offline is the last will)
    plantwire/v1/{gateway}/{device}/status   retained; device connection state
    plantwire/v1/{gateway}/{device}/meta     retained; the device's tags
    plantwire/v1/{gateway}/{device}/data     QoS 1; batches of sampled values
    plantwire/v1/{gateway}/cmd               QoS 1; commands to the gateway (see Commands below)
    plantwire/v1/{gateway}/reply             QoS 1; the gateway's replies, matched by command id

Timestamps on the wire are integers: microseconds since the Unix epoch, UTC. That keeps the
OPC UA source timestamp exact, costs nothing to encode, and sorts as a number.

Values (`JsonValue`) keep their OPC UA type's meaning (docs/wire.md, "Values by OPC UA type"):
numbers, booleans and strings as themselves; arrays as JSON arrays (meta `dims`); structures as
JSON objects; ByteString as base64; DateTime as µs; enumerations as their integer (meta `enum`);
a UInt64 above 2^63-1 as its exact decimal string, never a float.

Decoding is hand-written rather than model-based because it sits on the ingest hot path
(one call per message, tens of thousands of values a second); every rejection raises
`WireError` with a message that says which field was wrong.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar, dataclass_transform

import orjson

VERSION: Final = 1
ROOT: Final = f"plantwire/v{VERSION}"

MAX_PAYLOAD_BYTES: Final = 1_048_576
"""Largest message either side accepts; the gateway splits batches well below it."""
MAX_VALUES_PER_MESSAGE: Final = 5_000
MAX_STRING_VALUE: Final = 4_096
MAX_INT: Final = 2**63 - 1
"""Integers must fit a signed 64-bit column; JSON allows more, stores do not."""
MAX_UINT64: Final = 2**64 - 1
"""A UInt64 above `MAX_INT` travels as its exact decimal string, e.g. "9223372036854775813"."""
MAX_NESTING: Final = 8
"""Arrays and structures nest at most this deep (a matrix is 2, an array of structures 2)."""
MAX_TS: Final = 253_402_300_799_999_999
"""9999-12-31T23:59:59.999999Z: the last instant an ISO 8601 date can show."""

STATUS_GOOD: Final = 0
"""OPC UA StatusCode Good. Any other code is carried through unchanged (e.g. 0x80000000 Bad)."""
STATUS_BAD_NO_COMMUNICATION: Final = 0x80310000
"""OPC UA BadNoCommunication: what a tag reports while its device is unreachable."""

ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
"""Gateway and device ids (topic levels); also the OpenAPI document's pattern for them."""
_ID_RE: Final = re.compile(ID_PATTERN)

Value = float | int | bool | str | None
"""A scalar on the wire."""
JsonValue = Value | list[Any] | dict[str, Any]
"""Any value on the wire: a scalar, an array (JSON list) or a structure (JSON object) of values."""
MessageKind = Literal["data", "meta", "status"]
DeviceState = Literal["connecting", "online", "offline"]
GatewayState = Literal["online", "offline"]


Quality = Literal["good", "uncertain", "bad"]


def quality(status: int) -> Quality:
    """OPC UA severity, the top two bits of the status code: 00 good, 01 uncertain, 10/11 bad."""
    severity = (status >> 30) & 0b11
    return "good" if severity == 0 else "uncertain" if severity == 1 else "bad"


class WireError(ValueError):
    """A topic or payload that does not follow the contract."""


def now_us() -> int:
    """Current time as wire timestamp (µs since the epoch, UTC)."""
    return time.time_ns() // 1_000


def check_id(kind: str, value: object) -> str:
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
        kind: MessageKind = parts[4]  # type: ignore[assignment]  # parts[4] was checked to be a MessageKind just above
        return Topic(check_id("gateway", parts[2]), check_id("device", parts[3]), kind)
    raise WireError(f"topic {topic!r} is not a v{VERSION} data, meta or status topic")


# ---------------------------------------------------------------------------------------------
# Payloads


_R = TypeVar("_R")


@dataclass_transform(frozen_default=True)
def _value_record(cls: type[_R]) -> type[_R]:
    """A slotted dataclass that type checkers treat as frozen (assigning a field is an error there).

    At run time it is not frozen: a frozen dataclass's `__init__` sets each field through
    `object.__setattr__`, four times the cost of a plain one (~0.85 against ~0.2 µs here), paid for
    every value a gateway reads and the platform receives. Equality and hash are a frozen one's.
    """
    return dataclass(slots=True, unsafe_hash=True)(cls)


@_value_record
class Sample:
    """One sampled value: tag name, source timestamp (µs), value, OPC UA status code."""

    tag: str
    ts: int
    value: JsonValue
    status: int = STATUS_GOOD
    historical: bool = False
    """Read back from the server's history after a gap (`"h": true` on the wire), not delivered live."""


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
    dims: tuple[int, ...] | None = None
    """Array dimensions (OPC UA ArrayDimensions; 0 = any length); None for a scalar."""
    enum: dict[int, str] | None = None
    """An enumeration's names by value; the samples carry the integer value."""
    locale: str | None = None
    """A LocalizedText's locale (as read at browse time); the samples carry the text."""


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
    clock_offset_ms: float | None = None
    """The device's clock minus the gateway's, measured at connect and periodically; None unknown."""


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
            "values": [
                {"tag": s.tag, "ts": s.ts, "v": s.value, "q": s.status, "h": True}
                if s.historical
                else {"tag": s.tag, "ts": s.ts, "v": s.value, "q": s.status}
                for s in batch.samples
            ],
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
        if t.dims is not None:
            item["dims"] = list(t.dims)
        if t.enum is not None:
            item["enum"] = {str(k): v for k, v in t.enum.items()}
        if t.locale is not None:
            item["locale"] = t.locale
        tags.append(item)
    return orjson.dumps({"endpoint": meta.endpoint, "root": meta.root, "sent": meta.sent, "tags": tags})


def encode_device_status(status: DeviceStatus) -> bytes:
    body: dict[str, Any] = {
        "state": status.state,
        "since": status.since,
        "endpoint": status.endpoint,
        "error": status.error,
    }
    if status.clock_offset_ms is not None:
        body["clock_offset_ms"] = status.clock_offset_ms
    return orjson.dumps(body)


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


def _check_compound(value: Any, where: str, depth: int = 1) -> None:
    """An array or structure value: nested lists/objects of wire scalars, at most `MAX_NESTING` deep."""
    if depth > MAX_NESTING:
        raise WireError(f"{where} nests arrays/structures deeper than {MAX_NESTING}")
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(item, list | dict):
            _check_compound(item, where, depth + 1)
        elif isinstance(item, str):
            if len(item) > MAX_STRING_VALUE:
                raise WireError(f"{where}[{key!r}] is a string longer than {MAX_STRING_VALUE}")
        elif type(item) is int:
            if not -MAX_INT - 1 <= item <= MAX_INT:
                raise WireError(f"{where}[{key!r}] is an integer outside the signed 64-bit range")
        elif not (item is None or isinstance(item, float | bool)):
            raise WireError(f"{where}[{key!r}] must be a number, boolean, string, null, array or object")


def decode_data(payload: bytes, compound: Literal["text", "native"] = "text") -> DataBatch:
    """A data message. Arrays and structures are checked, then given as their compact JSON text
    (`compound="text"`, what a store of scalars can keep) or as lists and dicts (`"native"`)."""
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
    # orjson gives exact types (dict, list, str, int, float, bool, None): `type(x) is` checks are
    # the isinstance checks here, at a fraction of their cost per value; the common case goes first.
    for i, item in enumerate(values):
        if type(item) is not dict:
            raise WireError(f"values[{i}] must be an object")
        tag = item.get("tag")
        ts = item.get("ts")
        v = item.get("v")
        q = item.get("q", STATUS_GOOD)
        if type(tag) is not str or not tag or len(tag) > 256:
            raise WireError(f"values[{i}].tag must be a non-empty string of at most 256 characters")
        if type(ts) is not int or not 0 <= ts <= MAX_TS:
            raise WireError(f"values[{i}].ts must be an integer from 0 to {MAX_TS} (µs since epoch)")
        if type(q) is not int or not 0 <= q <= 0xFFFFFFFF:
            raise WireError(f"values[{i}].q must be an OPC UA status code (uint32)")
        kind = type(v)
        if kind is float or kind is bool or v is None:
            pass
        elif kind is str:
            if len(v) > MAX_STRING_VALUE:
                raise WireError(f"values[{i}].v is a string longer than {MAX_STRING_VALUE}")
        elif kind is int:
            if not -MAX_INT - 1 <= v <= MAX_INT:
                raise WireError(f"values[{i}].v is an integer outside the signed 64-bit range")
        elif kind is list or kind is dict:
            _check_compound(v, f"values[{i}].v")
            if compound == "text":
                v = orjson.dumps(v).decode()
        else:
            raise WireError(f"values[{i}].v must be a number, boolean, string, null, array or object")
        h = item.get("h", False)
        if type(h) is not bool:
            raise WireError(f"values[{i}].h must be a boolean (true: back-filled from history)")
        samples.append(Sample(tag, ts, v, q, h))
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
        dims = t.get("dims")
        if dims is not None and not (
            isinstance(dims, list) and dims and all(type(d) is int and d >= 0 for d in dims)
        ):
            raise WireError(f"{where}dims must be a list of non-negative integers")
        enum = t.get("enum")
        if enum is not None:
            if not isinstance(enum, dict) or not all(
                isinstance(k, str) and k.lstrip("-").isdigit() and isinstance(n, str) for k, n in enum.items()
            ):
                raise WireError(f"{where}enum must map integer values (as strings) to names")
            enum = {int(k): n for k, n in enum.items()}
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
                dims=tuple(dims) if dims is not None else None,
                enum=enum,
                locale=_opt_str(t, "locale", where),
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
    offset = obj.get("clock_offset_ms")
    if offset is not None and (isinstance(offset, bool) or not isinstance(offset, int | float)):
        raise WireError("'clock_offset_ms' must be a number or absent")
    return DeviceStatus(
        state=state,
        since=_int(obj, "since"),
        endpoint=_str(obj, "endpoint"),
        error=_opt_str(obj, "error", ""),
        clock_offset_ms=float(offset) if offset is not None else None,
    )


def decode_gateway_status(payload: bytes) -> GatewayStatus:
    obj = _load_object(payload)
    state = obj.get("state")
    if state not in ("online", "offline"):
        raise WireError("'state' must be 'online' or 'offline'")
    version = obj.get("version", "")
    return GatewayStatus(state=state, since=_int(obj, "since"), version=str(version))


# ---------------------------------------------------------------------------------------------
# Commands: platform -> gateway on `{gateway}/cmd`, replies gateway -> platform on `{gateway}/reply`
#
# Both QoS 1, not retained. A command names its device in the payload (so `attach` can name one
# that does not exist yet) and carries an id: the gateway executes an id at most once and answers a
# repeated id with the reply it kept. `expires` bounds how late a command may still run: a command
# the broker delivers after the platform gave up is refused instead of moving a machine by surprise.

CommandOp = Literal["write", "call", "browse", "attach", "detach"]
COMMAND_OPS: Final[tuple[CommandOp, ...]] = ("write", "call", "browse", "attach", "detach")
ControlKind = Literal["cmd", "reply"]
REPLY_SUBSCRIPTION: Final = f"{ROOT}/+/reply"
"""Topic filter a platform subscribes to for command replies."""
MAX_COMMAND_ARGS: Final = 32
COMMAND_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"
_COMMAND_ID_RE: Final = re.compile(COMMAND_ID_PATTERN)

REPLY_CODES: Final = (
    "ok",
    "opcua_status",  # the device answered with a bad OPC UA status (see `status`)
    "unknown_device",
    "unknown_tag",
    "not_writable",
    "unknown_method",
    "unknown_node",
    "invalid",  # the command's arguments do not fit (type, conversion, config)
    "duplicate",  # attach: the device id is taken
    "unreachable",  # the device's endpoint did not answer
    "too_many_operations",  # the device refused a request as too large (BadTooManyOperations)
    "security_rejected",  # the device offers no endpoint with the configured security policy and mode
    "certificate_untrusted",  # the device's certificate is not trusted yet (or it does not trust ours)
    "identity_rejected",  # the device refused the user identity (name, password or certificate)
    "not_connected",  # the device is attached but its session is not up
    "configured",  # detach: the device comes from the gateway's config file
    "expired",
    "interrupted",  # the gateway stopped while executing; the outcome is unknown
    "error",
)


def command_topic(gateway: str) -> str:
    return f"{ROOT}/{gateway}/cmd"


def reply_topic(gateway: str) -> str:
    return f"{ROOT}/{gateway}/reply"


def parse_control_topic(topic: str) -> tuple[str, ControlKind]:
    """(gateway, "cmd" | "reply") of a command or reply topic."""
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != ROOT or parts[3] not in ("cmd", "reply"):
        raise WireError(f"topic {topic!r} is not a v{VERSION} cmd or reply topic")
    kind: ControlKind = parts[3]  # type: ignore[assignment]  # parts[3] was checked to be a ControlKind just above
    return check_id("gateway", parts[2]), kind


def check_command_id(value: object) -> str:
    if not isinstance(value, str) or not _COMMAND_ID_RE.match(value):
        raise WireError(
            f"command id {value!r} is not valid: use 1-64 letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit"
        )
    return value


@dataclass(frozen=True, slots=True)
class Command:
    """One command for one device of a gateway.

    `args` by op: write {"tag", "value"}; call {"method", "args": [...]}; browse {"node"?};
    attach {"endpoint", "root"?, "include"?, "exclude"?}; detach {}.
    """

    id: str
    op: CommandOp
    device: str
    args: dict[str, Any]
    sent: int
    expires: int
    user: str = "anonymous"


@dataclass(frozen=True, slots=True)
class CommandReply:
    """What happened. `status` is the OPC UA status code (0 Good) when the device was asked."""

    id: str
    op: CommandOp
    device: str
    ok: bool
    code: str
    status: int = STATUS_GOOD
    status_name: str = "Good"
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    received: int = 0
    done: int = 0


def encode_command(cmd: Command) -> bytes:
    return orjson.dumps(
        {
            "id": cmd.id,
            "op": cmd.op,
            "device": cmd.device,
            "args": cmd.args,
            "sent": cmd.sent,
            "expires": cmd.expires,
            "user": cmd.user,
        }
    )


def _check_value(value: Any, where: str) -> Value:
    if isinstance(value, str):
        if len(value) > MAX_STRING_VALUE:
            raise WireError(f"{where} is a string longer than {MAX_STRING_VALUE}")
    elif type(value) is int:
        if not -MAX_INT - 1 <= value <= 2**64 - 1:
            raise WireError(f"{where} is an integer outside the 64-bit range")
    elif not (value is None or isinstance(value, float | bool)):
        raise WireError(f"{where} must be a number, boolean, string or null")
    return value


def _str_list(args: dict[str, Any], key: str) -> None:
    value = args.get(key)
    if value is not None and not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
        raise WireError(f"args.{key} must be a list of strings")


def _check_args(op: CommandOp, args: dict[str, Any]) -> None:
    if op == "write":
        _str(args, "tag", "args.")
        if "value" not in args:
            raise WireError("args.value is required for a write")
        if isinstance(args["value"], list | dict):  # an array tag (or a structure)
            _check_compound(args["value"], "args.value")
        else:
            _check_value(args["value"], "args.value")
    elif op == "call":
        _str(args, "method", "args.")
        call_args = args.get("args", [])
        if not isinstance(call_args, list) or len(call_args) > MAX_COMMAND_ARGS:
            raise WireError(f"args.args must be a list of at most {MAX_COMMAND_ARGS} values")
        for i, v in enumerate(call_args):
            if isinstance(v, list | dict):  # an array or structure argument
                _check_compound(v, f"args.args[{i}]")
            else:
                _check_value(v, f"args.args[{i}]")
    elif op == "browse":
        _opt_str(args, "node", "args.")
    elif op == "attach":
        _str(args, "endpoint", "args.")
        _opt_str(args, "root", "args.")
        _str_list(args, "include")
        _str_list(args, "exclude")


def decode_command(payload: bytes) -> Command:
    obj = _load_object(payload)
    op = obj.get("op")
    if op not in COMMAND_OPS:
        raise WireError(f"'op' must be one of {', '.join(COMMAND_OPS)}")
    args = obj.get("args", {})
    if not isinstance(args, dict):
        raise WireError("'args' must be an object")
    _check_args(op, args)
    user = obj.get("user", "anonymous")
    if not isinstance(user, str) or len(user) > 256:
        raise WireError("'user' must be a string of at most 256 characters")
    return Command(
        id=check_command_id(obj.get("id")),
        op=op,
        device=check_id("device", obj.get("device")),
        args=args,
        sent=_int(obj, "sent"),
        expires=_int(obj, "expires"),
        user=user,
    )


def encode_reply(reply: CommandReply) -> bytes:
    return orjson.dumps(
        {
            "id": reply.id,
            "op": reply.op,
            "device": reply.device,
            "ok": reply.ok,
            "code": reply.code,
            "status": reply.status,
            "status_name": reply.status_name,
            "error": reply.error,
            "result": reply.result,
            "received": reply.received,
            "done": reply.done,
        }
    )


def decode_reply(payload: bytes) -> CommandReply:
    obj = _load_object(payload)
    op = obj.get("op")
    if op not in COMMAND_OPS:
        raise WireError(f"'op' must be one of {', '.join(COMMAND_OPS)}")
    ok = obj.get("ok")
    if not isinstance(ok, bool):
        raise WireError("'ok' must be a boolean")
    result = obj.get("result", {})
    if not isinstance(result, dict):
        raise WireError("'result' must be an object")
    status = obj.get("status", STATUS_GOOD)
    if type(status) is not int or not 0 <= status <= 0xFFFFFFFF:
        raise WireError("'status' must be an OPC UA status code (uint32)")
    return CommandReply(
        id=check_command_id(obj.get("id")),
        op=op,
        device=check_id("device", obj.get("device")),
        ok=ok,
        code=_str(obj, "code"),
        status=status,
        status_name=str(obj.get("status_name") or ""),
        error=_opt_str(obj, "error", ""),
        result=result,
        received=_int(obj, "received"),
        done=_int(obj, "done"),
    )
