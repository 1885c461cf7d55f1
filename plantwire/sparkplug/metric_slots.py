"""A device's metrics as pre-built encoding slots: the edge node's DDATA hot path.

One `MetricSlot` per metric of a DBIRTH holds what every value of it needs, worked out once: its
alias, the protobuf value field, the Python type that goes into that field unchanged (and the
range and mask of an integer type), and the last value recorded (report by exception). A value of
that exact type is checked and set with a comparison or two; any other value (None, an int for a
Double, a DateTime, an array, a value that does not fit) takes the codec's general path
(`payload._raw_value`), so both paths accept and refuse exactly the same values.

`encode_wire_values` fills a DDATA straight from the gateway's JSON wire items (the outbox rows'
`values`: tag, ts in µs, v, q as an OPC UA status code): no intermediate Python objects per value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from plantwire.sparkplug import sparkplug_b_pb2 as pb
from plantwire.sparkplug.payload import (
    _INT_WIDTH,
    _SIGNED,
    NO_PROPERTIES,
    QUALITY_KEY,
    DataType,
    MetricValue,
    PayloadError,
    Property,
    _encode_properties,
    _raw_value,
)
from plantwire.sparkplug.protobuf_fields import value_packer, varint, whole_metric_packer
from plantwire.sparkplug.tag_types import sparkplug_quality, to_metric_value
from plantwire.wire import STATUS_GOOD

_FAST_TYPE: Final[dict[DataType, type]] = {
    DataType.Double: float,
    DataType.Float: float,
    DataType.Boolean: bool,
    DataType.String: str,
    DataType.Text: str,
    DataType.UUID: str,
    **dict.fromkeys(_INT_WIDTH, int),
}
"""The Python type a datatype's protobuf field takes as it is (ints after a range check and mask)."""

_FIELD: Final[dict[DataType, str]] = {
    DataType.Double: "double_value",
    DataType.Float: "float_value",
    DataType.Boolean: "boolean_value",
    DataType.String: "string_value",
    DataType.Text: "string_value",
    DataType.UUID: "string_value",
    DataType.Int64: "long_value",
    DataType.UInt64: "long_value",
    **dict.fromkeys((DataType.Int8, DataType.Int16, DataType.Int32), "int_value"),
    **dict.fromkeys((DataType.UInt8, DataType.UInt16, DataType.UInt32), "int_value"),
}

_QUALITY_PROPS: dict[int, Mapping[str, Property]] = {}


def quality_properties(q: int | None) -> Mapping[str, Property]:
    """The PropertySet carrying a Sparkplug quality (shared, one per quality value)."""
    if q is None:
        return NO_PROPERTIES
    found = _QUALITY_PROPS.get(q)
    if found is None:
        found = _QUALITY_PROPS[q] = {QUALITY_KEY: Property(DataType.Int32, q)}
    return found


@dataclass(slots=True)
class MetricSlot:
    """One metric of a device, ready to encode; `value`/`timestamp`/`quality` are the last recorded."""

    name: str
    datatype: DataType
    alias: int
    field: str = ""
    fast_type: Any = None
    """The type taken as it is (`type(v) is fast_type`); None: every value takes the general path."""
    ranged: bool = False
    low: int = 0
    high: int = 0
    mask: int = 0
    recorded: bool = False
    value: MetricValue = None
    timestamp: int = 0
    quality: int | None = None
    head: bytes = b""
    """The metric's first field as protobuf bytes (its alias), for `metric_bytes`."""
    pack: Any = None
    """`value_packer(datatype)`: the value field's bytes of a fast-type value."""
    whole: Any = None
    """Double and Float: the whole metric in one call (`protobuf_fields.whole_metric_packer`)."""
    whole_tag: int = 0

    def __post_init__(self) -> None:
        self.field = _FIELD.get(self.datatype, "")
        self.fast_type = _FAST_TYPE.get(self.datatype)
        self.head = b"\x10" + varint(self.alias)
        self.pack = value_packer(self.datatype)
        whole = whole_metric_packer(self.datatype, self.head)
        if whole is not None:
            self.whole, self.whole_tag = whole
        bits = _INT_WIDTH.get(self.datatype)
        if bits is not None:
            self.ranged = True
            signed = self.datatype in _SIGNED
            self.low, self.high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
            self.mask = (1 << bits) - 1

    def raw(self, value: Any) -> tuple[str, Any]:
        """(protobuf field, what goes in it) for a non-None metric value; PayloadError naming the metric."""
        if type(value) is self.fast_type and (not self.ranged or self.low <= value <= self.high):
            return self.field, (value & self.mask) if self.ranged else value
        try:
            return _raw_value(self.datatype, value)
        except PayloadError as err:
            raise PayloadError(f"metric alias {self.alias}: {err}") from err

    def record(self, value: MetricValue, timestamp: int, quality: int | None) -> None:
        self.recorded, self.value, self.timestamp, self.quality = True, value, timestamp, quality

    def unchanged(self, value: MetricValue, quality: int | None) -> bool:
        """The same value (of the same type) with the same quality as the last one recorded."""
        return (
            self.recorded
            and self.value == value
            and type(self.value) is type(value)
            and self.quality == quality
        )


Undo = list[tuple[MetricSlot, bool, MetricValue, int, int | None]]


def restore(undo: Undo) -> None:
    """Put back what `record` overwrote, newest first (a message that could not be encoded)."""
    for slot, recorded, value, ts, q in reversed(undo):
        slot.recorded, slot.value, slot.timestamp, slot.quality = recorded, value, ts, q


def wire_metric_value(datatype: DataType, value: Any) -> MetricValue:
    """A JSON wire value as the metric value: arrays and structures as their compact JSON text
    (as `wire.decode_data` gives them), DateTime µs -> ms, ints for Float/Double as floats."""
    if isinstance(value, list | dict):
        value = orjson.dumps(value).decode()
    return to_metric_value(datatype, value)


def encode_wire_values(
    msg: pb.Payload, slots: Mapping[str, MetricSlot], items: Iterable[Mapping[str, Any]], historical: bool
) -> tuple[int, Undo]:
    """Add the items that changed (all when `historical`; an item with `"h": true` always, as
    historical) to `msg`; returns (metrics added, undo).

    Raises KeyError for a tag that is not a metric of `slots`, PayloadError for a value that does not
    fit its metric; either way the slots are as they were. Recorded are live values only."""
    add = msg.metrics.add
    undo: Undo = []
    added = 0
    try:
        for item in items:
            slot = slots[item["tag"]]
            v = item["v"]
            q = item.get("q", STATUS_GOOD)
            quality = None if q == STATUS_GOOD else sparkplug_quality(q)
            fast = type(v) is slot.fast_type and (not slot.ranged or slot.low <= v <= slot.high)
            if not fast:
                v = wire_metric_value(slot.datatype, v)
            ts = item["ts"] // 1000
            hist = historical or item.get("h") is True  # read back from the server's history
            if not hist:
                old = slot.value
                if slot.recorded and old == v and type(old) is type(v) and slot.quality == quality:
                    continue  # report by exception
                undo.append((slot, slot.recorded, old, slot.timestamp, slot.quality))
                slot.recorded, slot.value, slot.timestamp, slot.quality = True, v, ts, quality
            if fast:
                m = add(alias=slot.alias, timestamp=ts, **{slot.field: (v & slot.mask) if slot.ranged else v})
            else:
                which, raw = ("is_null", True) if v is None else slot.raw(v)
                m = add(alias=slot.alias, timestamp=ts, **{which: raw})
            if hist:
                m.is_historical = True
            if quality is not None:
                _encode_properties(m.properties, quality_properties(quality))
            added += 1
    except BaseException:
        restore(undo)
        raise
    return added, undo
