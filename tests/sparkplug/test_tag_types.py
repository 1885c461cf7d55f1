"""Plantwire tag types and values <-> Sparkplug datatypes and values."""

from __future__ import annotations

from plantwire import wire
from plantwire.sparkplug.payload import QUALITY_BAD, QUALITY_GOOD, QUALITY_STALE, DataType
from plantwire.sparkplug.tag_types import (
    FROM_SPARKPLUG,
    TO_SPARKPLUG,
    opcua_status,
    plantwire_type,
    sparkplug_quality,
    sparkplug_type,
    to_metric_value,
    to_wire_value,
)


def test_every_opcua_type_maps_and_maps_back_to_itself_or_a_sibling() -> None:
    for name, datatype in TO_SPARKPLUG.items():
        back = plantwire_type(datatype)
        assert back == name or TO_SPARKPLUG[back] is datatype, name
    same_values = {(DataType.Text, DataType.String), (DataType.File, DataType.Bytes)}
    for datatype, name in FROM_SPARKPLUG.items():
        assert TO_SPARKPLUG[name] is datatype or (datatype, TO_SPARKPLUG[name]) in same_values, datatype
    assert sparkplug_type("SByte") is DataType.Int8 and sparkplug_type("UInt64") is DataType.UInt64


def test_unknown_type_names_fall_back_on_the_value() -> None:
    assert sparkplug_type("Unknown", 1.5) is DataType.Double
    assert sparkplug_type("Unknown", True) is DataType.Boolean
    assert sparkplug_type("Unknown", 3) is DataType.Int64
    assert sparkplug_type("Unknown", None) is DataType.String
    assert plantwire_type(DataType.Int32Array) == "Int32Array"


def test_values_convert_at_the_edge() -> None:
    assert to_metric_value(DataType.DateTime, 1_700_000_000_123_456) == 1_700_000_000_123
    assert to_wire_value(DataType.DateTime, 1_700_000_000_123) == 1_700_000_000_123_000
    assert to_metric_value(DataType.Double, 3) == 3.0 and type(to_metric_value(DataType.Double, 3)) is float
    assert to_metric_value(DataType.String, 7) == "7" and to_metric_value(DataType.Int8, None) is None
    assert to_wire_value(DataType.Bytes, b"\x01\xff") == "01ff"


def test_quality_maps_opcua_severity() -> None:
    assert sparkplug_quality(wire.STATUS_GOOD) is None
    assert sparkplug_quality(wire.STATUS_BAD_NO_COMMUNICATION) == QUALITY_BAD
    assert sparkplug_quality(0x40000000) == QUALITY_STALE
    assert wire.quality(opcua_status(QUALITY_BAD)) == "bad"
    assert wire.quality(opcua_status(QUALITY_STALE)) == "uncertain"
    assert opcua_status(QUALITY_GOOD) == opcua_status(None) == wire.STATUS_GOOD
