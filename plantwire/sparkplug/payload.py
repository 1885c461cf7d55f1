"""Sparkplug B payload codec: typed metrics <-> protobuf bytes (`sparkplug_b.proto`, Eclipse Tahu).

Values by datatype (Python side):

    Int8..Int64, UInt8..UInt64   int (range-checked against the declared width)
    Float, Double                float (Float is rounded to 32 bits by the encoding)
    Boolean                      bool
    String, Text, UUID           str
    DateTime                     int, milliseconds since the epoch (UTC)
    Bytes, File                  bytes
    <Type>Array                  tuple of the element type (DateTimeArray: ints, ms)
    any                          None, sent as ``is_null`` with no value

Signed integers travel as two's complement in the unsigned protobuf field of their datatype
(``int_value`` uint32 for Int8/16/32, ``long_value`` uint64 for Int64): -5 as Int8 is 251,
as Int32 4294967291. Decoding masks to the declared width first, so the 32-bit sign extension
that Tahu's Java encoder writes for Int8/Int16 (-5 as Int8 -> 4294967291) decodes the same.
UInt32 is written to ``int_value`` as the spec says; Tahu writes it to ``long_value``, and both
decode. Arrays are packed little-endian in ``bytes_value``; BooleanArray is a little-endian
uint32 count followed by the bits, most significant bit first; StringArray is NUL-terminated
UTF-8 strings. DataSet and Template metrics are refused with a clear error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Final, NamedTuple, TypeAlias

from google.protobuf.message import DecodeError

from plantwire.sparkplug import sparkplug_b_pb2 as pb
from plantwire.wire import MAX_PAYLOAD_BYTES


class DataType(IntEnum):
    """Sparkplug B datatypes, the numbers of `sparkplug_b.proto`'s DataType enum."""

    Unknown = 0
    Int8 = 1
    Int16 = 2
    Int32 = 3
    Int64 = 4
    UInt8 = 5
    UInt16 = 6
    UInt32 = 7
    UInt64 = 8
    Float = 9
    Double = 10
    Boolean = 11
    String = 12
    DateTime = 13
    Text = 14
    UUID = 15
    DataSet = 16
    Bytes = 17
    File = 18
    Template = 19
    PropertySet = 20
    PropertySetList = 21
    Int8Array = 22
    Int16Array = 23
    Int32Array = 24
    Int64Array = 25
    UInt8Array = 26
    UInt16Array = 27
    UInt32Array = 28
    UInt64Array = 29
    FloatArray = 30
    DoubleArray = 31
    BooleanArray = 32
    StringArray = 33
    DateTimeArray = 34


Scalar: TypeAlias = int | float | bool | str | bytes
MetricValue: TypeAlias = Scalar | tuple[Any, ...] | None


class PayloadError(ValueError):
    """Bytes that are not a Sparkplug B payload we can read, or a value that does not fit its type."""


class UnknownMetricError(PayloadError):
    """A DATA or CMD metric whose alias or name no birth certificate defined."""

    def __init__(self, alias: int | None, name: str | None) -> None:
        super().__init__(f"metric alias={alias} name={name!r} was not defined in a birth certificate")
        self.alias = alias
        self.name = name


@dataclass(frozen=True, slots=True)
class Property:
    """One value of a metric's PropertySet; `value` is a dict of Property for a nested PropertySet."""

    datatype: DataType
    value: Scalar | dict[str, Property] | None


NO_PROPERTIES: Final[Mapping[str, Property]] = MappingProxyType({})


class Metric(NamedTuple):
    """One metric. `datatype` is None in DATA/CMD metrics to be sent without one.

    A NamedTuple rather than a dataclass: a message carries hundreds and building them is half
    the cost of decoding one.
    """

    name: str | None
    datatype: DataType | None
    value: MetricValue
    alias: int | None = None
    timestamp: int | None = None
    """Milliseconds since the epoch."""
    is_historical: bool = False
    is_transient: bool = False
    properties: Mapping[str, Property] = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class Payload:
    timestamp: int | None
    """Milliseconds since the epoch, when the message was sent."""
    seq: int | None
    metrics: Sequence[Metric]


# ---------------------------------------------------------------------------------------------
# Property helpers: engineering unit, range and quality, as Ignition and Tahu name them

UNIT_KEY: Final = "engUnit"
LOW_KEY: Final = "engLow"
HIGH_KEY: Final = "engHigh"
QUALITY_KEY: Final = "Quality"
QUALITY_BAD: Final = 0
QUALITY_GOOD: Final = 192
QUALITY_STALE: Final = 500


def engineering_properties(unit: str | None, low: float | None, high: float | None) -> dict[str, Property]:
    """A metric's unit and range as the flat PropertySet Ignition shows: engUnit, engLow, engHigh."""
    props: dict[str, Property] = {}
    if unit is not None:
        props[UNIT_KEY] = Property(DataType.String, unit)
    if low is not None:
        props[LOW_KEY] = Property(DataType.Double, float(low))
    if high is not None:
        props[HIGH_KEY] = Property(DataType.Double, float(high))
    return props


def _prop(props: Mapping[str, Property], key: str) -> Property | None:
    found = props.get(key)
    if found is None:  # Tahu's Node-RED examples capitalise: EngUnit
        found = props.get(key[0].upper() + key[1:])
    return found


def unit_and_range(props: Mapping[str, Property]) -> tuple[str | None, float | None, float | None]:
    """(unit, low, high) from a PropertySet; numbers of any numeric type are accepted for the range."""
    unit_p, low_p, high_p = (_prop(props, k) for k in (UNIT_KEY, LOW_KEY, HIGH_KEY))
    unit = unit_p.value if unit_p is not None and isinstance(unit_p.value, str) else None

    def number(p: Property | None) -> float | None:
        if p is None or isinstance(p.value, bool) or not isinstance(p.value, int | float):
            return None
        return float(p.value)

    return unit, number(low_p), number(high_p)


def quality(props: Mapping[str, Property]) -> int | None:
    """The Sparkplug 'Quality' property (0 bad, 192 good, 500 stale), None if absent."""
    p = props.get(QUALITY_KEY)
    return p.value if p is not None and type(p.value) is int else None


# ---------------------------------------------------------------------------------------------
# Scalars

_INT_WIDTH: Final = {
    DataType.Int8: 8,
    DataType.Int16: 16,
    DataType.Int32: 32,
    DataType.Int64: 64,
    DataType.UInt8: 8,
    DataType.UInt16: 16,
    DataType.UInt32: 32,
    DataType.UInt64: 64,
}
_SIGNED: Final = frozenset({DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64})
_STRINGS: Final = frozenset({DataType.String, DataType.Text, DataType.UUID})
_BYTES: Final = frozenset({DataType.Bytes, DataType.File})
_ARRAY_FORMAT: Final = {
    DataType.Int8Array: "b",
    DataType.Int16Array: "h",
    DataType.Int32Array: "i",
    DataType.Int64Array: "q",
    DataType.UInt8Array: "B",
    DataType.UInt16Array: "H",
    DataType.UInt32Array: "I",
    DataType.UInt64Array: "Q",
    DataType.FloatArray: "f",
    DataType.DoubleArray: "d",
    DataType.DateTimeArray: "q",
}
_MAX_MS: Final = 2**63 - 1
ARRAY_TYPES: Final = frozenset({*_ARRAY_FORMAT, DataType.BooleanArray, DataType.StringArray})
SUPPORTED_TYPES: Final = frozenset({*_INT_WIDTH, *_STRINGS, *_BYTES, *ARRAY_TYPES}) | {
    DataType.Float,
    DataType.Double,
    DataType.Boolean,
    DataType.DateTime,
}


def _check_int(datatype: DataType, value: Any) -> int:
    if type(value) is not int:
        raise PayloadError(f"{datatype.name} needs an int, got {type(value).__name__}")
    bits = _INT_WIDTH[datatype]
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if datatype in _SIGNED else (0, 2**bits - 1)
    if not low <= value <= high:
        raise PayloadError(f"{value} does not fit {datatype.name} ({low}..{high})")
    return value


def to_unsigned(datatype: DataType, value: int) -> int:
    """Two's complement of a signed value in the declared width (Int8 -5 -> 251)."""
    return value & ((1 << _INT_WIDTH[datatype]) - 1)


def from_unsigned(datatype: DataType, raw: int) -> int:
    """Mask to the declared width, then read the sign bit for signed types."""
    bits = _INT_WIDTH[datatype]
    value = raw & ((1 << bits) - 1)
    if datatype in _SIGNED and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def _pack_array(datatype: DataType, value: Any) -> bytes:
    if not isinstance(value, tuple | list):
        raise PayloadError(f"{datatype.name} needs a tuple or list, got {type(value).__name__}")
    if datatype is DataType.BooleanArray:
        if not all(type(v) is bool for v in value):
            raise PayloadError("BooleanArray elements must be bools")
        bits = bytearray((len(value) + 7) // 8)
        for i, v in enumerate(value):
            if v:
                bits[i // 8] |= 0x80 >> (i % 8)
        return struct.pack("<I", len(value)) + bytes(bits)
    if datatype is DataType.StringArray:
        if not all(isinstance(v, str) and "\0" not in v for v in value):
            raise PayloadError("StringArray elements must be strings without NUL characters")
        return b"".join(v.encode() + b"\0" for v in value)
    fmt = _ARRAY_FORMAT[datatype]
    try:
        return struct.pack(f"<{len(value)}{fmt}", *value)
    except struct.error as err:
        raise PayloadError(f"{datatype.name} element does not fit: {err}") from err


def _unpack_array(datatype: DataType, raw: bytes) -> tuple[Any, ...]:
    if datatype is DataType.BooleanArray:
        if len(raw) < 4:
            raise PayloadError("BooleanArray is shorter than its 4-byte count")
        (count,) = struct.unpack_from("<I", raw)
        if len(raw) - 4 < (count + 7) // 8:
            raise PayloadError(f"BooleanArray says {count} values but has {len(raw) - 4} bytes")
        return tuple(bool(raw[4 + i // 8] & (0x80 >> (i % 8))) for i in range(count))
    if datatype is DataType.StringArray:
        if raw and not raw.endswith(b"\0"):
            raise PayloadError("StringArray must end with a NUL")
        try:
            return tuple(s.decode() for s in raw.split(b"\0")[:-1])
        except UnicodeDecodeError as err:
            raise PayloadError(f"StringArray is not UTF-8: {err}") from err
    fmt = _ARRAY_FORMAT[datatype]
    size = struct.calcsize(fmt)
    if len(raw) % size:
        raise PayloadError(f"{datatype.name} has {len(raw)} bytes, not a multiple of {size}")
    return struct.unpack(f"<{len(raw) // size}{fmt}", raw)


def _set_value(target: Any, datatype: DataType, value: Any) -> None:
    """Set the value oneof of a pb Metric or PropertyValue; `value` is not None."""
    which, raw = _raw_value(datatype, value)
    setattr(target, which, raw)


def _raw_value(datatype: DataType, value: Any) -> tuple[str, Any]:
    """(protobuf field, what goes in it) for a non-None value of `datatype`."""
    if datatype is DataType.Double or datatype is DataType.Float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PayloadError(f"{datatype.name} needs a float, got {type(value).__name__}")
        return ("float_value" if datatype is DataType.Float else "double_value"), value
    if datatype in _INT_WIDTH:
        raw = to_unsigned(datatype, _check_int(datatype, value))
        return ("long_value" if datatype in (DataType.Int64, DataType.UInt64) else "int_value"), raw
    if datatype is DataType.Boolean:
        if type(value) is not bool:
            raise PayloadError(f"Boolean needs a bool, got {type(value).__name__}")
        return "boolean_value", value
    if datatype in _STRINGS:
        if not isinstance(value, str):
            raise PayloadError(f"{datatype.name} needs a str, got {type(value).__name__}")
        return "string_value", value
    if datatype is DataType.DateTime:
        if type(value) is not int or not 0 <= value <= _MAX_MS:
            raise PayloadError(f"DateTime needs non-negative int milliseconds, got {value!r}")
        return "long_value", value
    if datatype in _BYTES:
        if not isinstance(value, bytes | bytearray):
            raise PayloadError(f"{datatype.name} needs bytes, got {type(value).__name__}")
        return "bytes_value", bytes(value)
    if datatype in ARRAY_TYPES:
        return "bytes_value", _pack_array(datatype, value)
    raise PayloadError(f"datatype {datatype.name} is not supported by Plantwire")


def _get_value(source: Any, datatype: DataType) -> MetricValue:
    """Read the value oneof of a pb Metric or PropertyValue for `datatype`."""
    which = source.WhichOneof("value")
    if which is None:
        raise PayloadError(f"{datatype.name} metric has neither a value nor is_null")
    return _convert(datatype, which, getattr(source, which))


_EXPECTED_FIELDS: Final[dict[DataType, tuple[str, ...]]] = {
    DataType.Float: ("float_value", "double_value"),
    DataType.Double: ("double_value", "float_value"),
    DataType.Boolean: ("boolean_value",),
    DataType.DateTime: ("long_value",),
}


def _convert(datatype: DataType, which: str, raw: Any) -> MetricValue:
    """The Python value of protobuf field `which` holding `raw`, for `datatype`."""
    if datatype in _INT_WIDTH:
        if which not in ("int_value", "long_value"):
            raise PayloadError(f"{datatype.name} value is in {which}, expected int_value or long_value")
        return from_unsigned(datatype, raw)
    expected = _EXPECTED_FIELDS.get(datatype)
    if expected is None:
        if datatype in _STRINGS:
            expected = ("string_value",)
        elif datatype in _BYTES or datatype in ARRAY_TYPES:
            expected = ("bytes_value",)
        else:
            raise PayloadError(f"datatype {datatype.name} is not supported by Plantwire")
    if which not in expected:
        raise PayloadError(f"{datatype.name} value is in {which}, expected {expected[0]}")
    if datatype in ARRAY_TYPES:
        return _unpack_array(datatype, raw)
    if datatype is DataType.DateTime and raw > _MAX_MS:
        raise PayloadError(f"DateTime {raw} ms is beyond the signed 64-bit range")
    return raw


def _datatype(number: int, where: str) -> DataType:
    try:
        return DataType(number)
    except ValueError as err:
        raise PayloadError(f"{where}: datatype {number} is not a Sparkplug datatype") from err


# ---------------------------------------------------------------------------------------------
# Properties

_PROPERTY_SCALARS: Final = frozenset({*_INT_WIDTH, *_STRINGS, DataType.Float, DataType.Double,
                                      DataType.Boolean, DataType.DateTime})  # fmt: skip


def _encode_properties(target: Any, props: Mapping[str, Property]) -> None:
    for key, prop in props.items():
        target.keys.append(key)
        pv = target.values.add()
        pv.type = prop.datatype
        if prop.value is None:
            pv.is_null = True
        elif prop.datatype is DataType.PropertySet:
            if not isinstance(prop.value, dict):
                raise PayloadError(f"property {key!r} is a PropertySet and needs a dict")
            _encode_properties(pv.propertyset_value, prop.value)
        elif prop.datatype in _PROPERTY_SCALARS:
            _set_value(pv, prop.datatype, prop.value)
        else:
            raise PayloadError(f"property {key!r}: datatype {prop.datatype.name} is not supported")


def _decode_properties(source: Any) -> dict[str, Property]:
    if len(source.keys) != len(source.values):
        raise PayloadError(f"PropertySet has {len(source.keys)} keys but {len(source.values)} values")
    props: dict[str, Property] = {}
    for key, pv in zip(source.keys, source.values, strict=True):
        datatype = _datatype(pv.type, f"property {key!r}")
        value: Scalar | dict[str, Property] | None
        if pv.is_null:
            value = None
        elif datatype is DataType.PropertySet:
            value = _decode_properties(pv.propertyset_value)
        elif datatype in _PROPERTY_SCALARS:
            value = _get_value(pv, datatype)  # type: ignore[assignment]  # the scalar datatypes here never decode to a tuple
        else:
            continue  # PropertySetList and extensions: not used by Plantwire, skipped
        props[key] = Property(datatype, value)
    return props


# ---------------------------------------------------------------------------------------------
# Payloads


def encode_payload(payload: Payload) -> bytes:
    """Protobuf bytes of a payload. Metrics with `datatype` None are sent without one (DATA, CMD)."""
    out = pb.Payload()
    if payload.timestamp is not None:
        out.timestamp = payload.timestamp
    if payload.seq is not None:
        out.seq = payload.seq
    for m in payload.metrics:
        _encode_metric(out.metrics, m)
    return out.SerializeToString()


def _encode_metric(metrics: Any, m: Metric, datatype: DataType | None = None) -> None:
    """Append `m` to a repeated Metric field, all scalar fields in one add() call."""
    fields: dict[str, Any] = {}
    if m.name is not None:
        fields["name"] = m.name
    if m.alias is not None:
        fields["alias"] = m.alias
    if m.timestamp is not None:
        fields["timestamp"] = m.timestamp
    if m.datatype is not None:
        fields["datatype"] = m.datatype
    if m.is_historical:
        fields["is_historical"] = True
    if m.is_transient:
        fields["is_transient"] = True
    if m.value is None:
        fields["is_null"] = True
    else:
        kind = m.datatype if m.datatype is not None else datatype
        if kind is None:
            raise PayloadError(f"metric {m.name or m.alias!r} has a value but no datatype")
        try:
            which, raw = _raw_value(kind, m.value)
        except PayloadError as err:
            raise PayloadError(f"metric {m.name or m.alias!r}: {err}") from err
        fields[which] = raw
    target = metrics.add(**fields)
    if m.properties:
        _encode_properties(target.properties, m.properties)


def encode_metrics(
    timestamp: int | None, seq: int | None, metrics: Sequence[Metric], types: Sequence[DataType]
) -> bytes:
    """Like `encode_payload`, for DATA/CMD metrics whose datatypes are known but not sent."""
    out = pb.Payload()
    if timestamp is not None:
        out.timestamp = timestamp
    if seq is not None:
        out.seq = seq
    for m, datatype in zip(metrics, types, strict=True):
        _encode_metric(out.metrics, m, datatype)
    return out.SerializeToString()


TypeLookup = Callable[[int | None, str | None], DataType | None]
"""(alias, name) -> the datatype a birth certificate gave it, None when unknown."""


def parse_payload(data: bytes) -> pb.Payload:
    """The protobuf message of a payload, within the size limit; PayloadError otherwise."""
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(data)} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}")
    msg = pb.Payload()
    try:
        msg.ParseFromString(data)
    except DecodeError as err:
        raise PayloadError(f"payload is not a Sparkplug B protobuf: {err}") from err
    return msg


def decode_payload(data: bytes, lookup: TypeLookup | None = None) -> Payload:
    """Decode a payload. Metrics without a datatype (DATA, CMD) take theirs from `lookup`;
    one that `lookup` does not know raises UnknownMetricError (a host answers with a rebirth).
    """
    msg = parse_payload(data)
    metrics = [_decode_metric(m, lookup) for m in msg.metrics]
    return Payload(
        timestamp=msg.timestamp if msg.HasField("timestamp") else None,
        seq=msg.seq if msg.HasField("seq") else None,
        metrics=metrics,
    )


def _decode_metric(m: Any, lookup: TypeLookup | None) -> Metric:
    # Plain HasField()/attribute reads: measured 3x faster than one ListFields() per metric (upb).
    name: str | None = m.name if m.HasField("name") else None
    alias: int | None = m.alias if m.HasField("alias") else None
    if m.HasField("datatype"):
        datatype = _datatype(m.datatype, f"metric {name if name is not None else alias!r}")
    else:
        found = lookup(alias, name) if lookup is not None else None
        if found is None:
            raise UnknownMetricError(alias, name)
        datatype = found
    try:
        value: MetricValue = None
        if not m.is_null:
            which = m.WhichOneof("value")
            if which is None:
                raise PayloadError(f"{datatype.name} metric has neither a value nor is_null")
            value = _convert(datatype, which, getattr(m, which))
        props = _decode_properties(m.properties) if m.HasField("properties") else NO_PROPERTIES
    except PayloadError as err:
        raise PayloadError(f"metric {name if name is not None else alias!r}: {err}") from err
    return Metric(
        name,
        datatype,
        value,
        alias,
        m.timestamp if m.HasField("timestamp") else None,
        m.is_historical,
        m.is_transient,
        props,
    )
