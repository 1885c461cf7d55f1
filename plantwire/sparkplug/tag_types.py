"""Plantwire tag types (OPC UA data type names in `wire.TagInfo.data_type`) <-> Sparkplug datatypes.

One table each way; add a row when the wire contract gains a type. Values convert at the same
edge: Plantwire timestamps are microseconds, Sparkplug's milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from plantwire.sparkplug.payload import (
    QUALITY_BAD,
    QUALITY_GOOD,
    QUALITY_STALE,
    DataType,
    MetricValue,
    Property,
)
from plantwire.wire import STATUS_GOOD, Value, quality

TO_SPARKPLUG: dict[str, DataType] = {
    "Boolean": DataType.Boolean,
    "SByte": DataType.Int8,
    "Byte": DataType.UInt8,
    "Int16": DataType.Int16,
    "UInt16": DataType.UInt16,
    "Int32": DataType.Int32,
    "UInt32": DataType.UInt32,
    "Int64": DataType.Int64,
    "UInt64": DataType.UInt64,
    "Float": DataType.Float,
    "Double": DataType.Double,
    "String": DataType.String,
    "LocalizedText": DataType.String,
    "DateTime": DataType.DateTime,
    "ByteString": DataType.Bytes,
    "Guid": DataType.UUID,
}
"""OPC UA type name -> Sparkplug datatype. Extendable: arrays map to the <Type>Array datatypes."""

FROM_SPARKPLUG: dict[DataType, str] = {
    DataType.Boolean: "Boolean",
    DataType.Int8: "SByte",
    DataType.UInt8: "Byte",
    DataType.Int16: "Int16",
    DataType.UInt16: "UInt16",
    DataType.Int32: "Int32",
    DataType.UInt32: "UInt32",
    DataType.Int64: "Int64",
    DataType.UInt64: "UInt64",
    DataType.Float: "Float",
    DataType.Double: "Double",
    DataType.String: "String",
    DataType.Text: "String",
    DataType.UUID: "Guid",
    DataType.DateTime: "DateTime",
    DataType.Bytes: "ByteString",
    DataType.File: "ByteString",
}
"""Sparkplug datatype -> the OPC UA type name Plantwire's meta carries."""

STATUS_UNCERTAIN: Final = 0x40000000
"""OPC UA Uncertain (severity 01)."""
STATUS_BAD: Final = 0x80000000
"""OPC UA Bad (severity 10)."""

_BY_PYTHON_TYPE: Final = {
    bool: DataType.Boolean,
    int: DataType.Int64,
    float: DataType.Double,
    str: DataType.String,
}


def sparkplug_type(data_type: str, sample: Value = None) -> DataType:
    """The Sparkplug datatype of a Plantwire tag; unknown type names fall back on the value's type."""
    found = TO_SPARKPLUG.get(data_type)
    if found is not None:
        return found
    return _BY_PYTHON_TYPE.get(type(sample), DataType.String)


def plantwire_type(datatype: DataType) -> str:
    """OPC UA type name for a Sparkplug datatype; array types keep their Sparkplug name."""
    return FROM_SPARKPLUG.get(datatype, datatype.name)


def to_metric_value(datatype: DataType, value: Value) -> MetricValue:
    """A Plantwire wire value as the Python value the codec wants for `datatype`."""
    if value is None:
        return None
    if datatype is DataType.DateTime and type(value) is int:
        return value // 1_000  # µs -> ms
    if datatype in (DataType.Float, DataType.Double) and type(value) is int:
        return float(value)
    if datatype in (DataType.String, DataType.Text) and not isinstance(value, str):
        return str(value)
    return value


def to_wire_value(datatype: DataType, value: MetricValue) -> Value:
    """A decoded Sparkplug value as a Plantwire wire value (bytes and arrays as text for now)."""
    if datatype is DataType.DateTime and type(value) is int:
        return value * 1_000  # ms -> µs
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return repr(list(value))
    return value


def sparkplug_quality(status: int) -> int | None:
    """OPC UA status code -> Sparkplug 'Quality' property: None for Good (nothing to send),
    500 stale for Uncertain, 0 bad for Bad."""
    if status == STATUS_GOOD:
        return None
    severity = quality(status)
    return None if severity == "good" else QUALITY_STALE if severity == "uncertain" else QUALITY_BAD


def opcua_status(sparkplug_quality: int | None) -> int:
    """Sparkplug 'Quality' -> an OPC UA status code for the store (Good, Uncertain, Bad)."""
    if sparkplug_quality is None or sparkplug_quality == QUALITY_GOOD:
        return STATUS_GOOD
    return STATUS_UNCERTAIN if sparkplug_quality == QUALITY_STALE else STATUS_BAD


READ_ONLY_KEY: Final = "readOnly"
"""Metric property (Boolean) saying a metric takes no DCMD: Ignition's tag property of that name,
which its MQTT Transmission sends when true. A birth metric without it is writable."""


def read_only_property() -> Property:
    return Property(DataType.Boolean, True)


def is_read_only(props: Mapping[str, Property]) -> bool:
    """Whether a birth metric's PropertySet says `readOnly` = true."""
    p = props.get(READ_ONLY_KEY)
    return p is not None and p.value is True
