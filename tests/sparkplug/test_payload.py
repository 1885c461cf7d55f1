"""The Sparkplug B payload codec: every datatype round-trips, signed integers as Tahu sends them,
arrays as the spec packs them, properties, nulls, and clear errors for bad input."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwire.sparkplug import sparkplug_b_pb2 as pb
from plantwire.sparkplug.payload import (
    DataType,
    Metric,
    Payload,
    PayloadError,
    Property,
    UnknownMetricError,
    decode_payload,
    encode_metrics,
    encode_payload,
    engineering_properties,
    quality,
    unit_and_range,
)

SIGNED = {DataType.Int8: 8, DataType.Int16: 16, DataType.Int32: 32, DataType.Int64: 64}
UNSIGNED = {DataType.UInt8: 8, DataType.UInt16: 16, DataType.UInt32: 32, DataType.UInt64: 64}
f32 = st.floats(width=32, allow_nan=False)
ms = st.integers(0, 2**63 - 1)
text = st.text(st.characters(codec="utf-8", exclude_characters="\0"))


def _int(bits: int, signed: bool) -> st.SearchStrategy[int]:
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else st.integers(0, 2**bits - 1)


STRATEGIES: dict[DataType, st.SearchStrategy[Any]] = {
    **{t: _int(b, True) for t, b in SIGNED.items()},
    **{t: _int(b, False) for t, b in UNSIGNED.items()},
    DataType.Float: f32,
    DataType.Double: st.floats(allow_nan=False),
    DataType.Boolean: st.booleans(),
    DataType.String: text,
    DataType.Text: text,
    DataType.UUID: st.uuids().map(str),
    DataType.DateTime: ms,
    DataType.Bytes: st.binary(),
    DataType.File: st.binary(),
    **{DataType[f"{t.name}Array"]: st.lists(_int(b, True)).map(tuple) for t, b in SIGNED.items()},
    **{DataType[f"{t.name}Array"]: st.lists(_int(b, False)).map(tuple) for t, b in UNSIGNED.items()},
    DataType.FloatArray: st.lists(f32).map(tuple),
    DataType.DoubleArray: st.lists(st.floats(allow_nan=False)).map(tuple),
    DataType.BooleanArray: st.lists(st.booleans()).map(tuple),
    DataType.StringArray: st.lists(text).map(tuple),
    DataType.DateTimeArray: st.lists(ms).map(tuple),
}


def roundtrip(metric: Metric) -> Metric:
    (out,) = decode_payload(encode_payload(Payload(1_700_000_000_000, 7, [metric]))).metrics
    return out


@pytest.mark.parametrize("datatype", list(STRATEGIES), ids=lambda t: t.name)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_datatype_round_trips(datatype: DataType, data: st.DataObject) -> None:
    value = data.draw(STRATEGIES[datatype])
    ts = data.draw(ms)
    out = roundtrip(Metric("m/a", datatype, value, alias=data.draw(st.integers(0, 2**64 - 1)), timestamp=ts))
    assert out.datatype is datatype and out.timestamp == ts
    assert out.value == value and type(out.value) is type(value)


@pytest.mark.parametrize("datatype", [*SIGNED], ids=lambda t: t.name)
def test_negative_integers_round_trip_as_twos_complement_of_the_declared_width(datatype: DataType) -> None:
    bits = SIGNED[datatype]
    for value in (-1, -5, -(2 ** (bits - 1))):
        data = encode_payload(Payload(None, None, [Metric("n", datatype, value)]))
        raw = pb.Payload.FromString(data).metrics[0]
        field = "long_value" if bits == 64 else "int_value"
        assert raw.WhichOneof("value") == field
        assert getattr(raw, field) == value + 2**bits  # -5 as Int8 is 251
        assert roundtrip(Metric("n", datatype, value)).value == value


@pytest.mark.parametrize("datatype", [DataType.Int8, DataType.Int16], ids=lambda t: t.name)
def test_tahu_java_sign_extended_small_ints_decode(datatype: DataType) -> None:
    """Tahu's Java encoder writes Int8/Int16 -5 as the 32-bit 0xFFFFFFFB; masking reads -5."""
    msg = pb.Payload()
    m = msg.metrics.add(name="x", datatype=datatype)
    m.int_value = 0xFFFFFFFB
    assert decode_payload(msg.SerializeToString()).metrics[0].value == -5


def test_uint32_in_long_value_as_tahu_java_writes_it_decodes() -> None:
    msg = pb.Payload()
    msg.metrics.add(name="u", datatype=DataType.UInt32, long_value=4_000_000_000)
    assert decode_payload(msg.SerializeToString()).metrics[0].value == 4_000_000_000


@pytest.mark.parametrize(
    ("datatype", "values", "expected"),
    [  # the examples of the Sparkplug 3.0 spec, section "Array Types" (its Int8 example prints
        # 0xEF for -23, a typo: -23 is 0xE9 in two's complement)
        (DataType.Int8Array, (-23, 123), "e97b"),
        (DataType.Int16Array, (-30000, 30000), "d08a3075"),
        (DataType.Int32Array, (-1, 315338746), "fffffffffaafcb12"),
        (DataType.UInt8Array, (23, 250), "17fa"),
        (DataType.UInt16Array, (30, 52360), "1e0088cc"),
        (DataType.UInt32Array, (52, 3293969225), "3400000049fb55c4"),
        (DataType.UInt64Array, (52, 16444743074749521625), "3400000000000000d99e02d1b27637e4"),
        (DataType.StringArray, ("ABC", "hello"), "41424300" + "68656c6c6f00"),
    ],
    ids=lambda v: v.name if isinstance(v, DataType) else None,
)
def test_arrays_pack_as_the_spec_examples(datatype: DataType, values: tuple[Any, ...], expected: str) -> None:
    raw = pb.Payload.FromString(encode_payload(Payload(None, None, [Metric("a", datatype, values)])))
    assert raw.metrics[0].bytes_value.hex() == expected
    assert roundtrip(Metric("a", datatype, values)).value == values


def test_boolean_array_is_count_then_bits_msb_first() -> None:
    values = (False, False, True, True, False, True, False, False, True, True, False, True)
    raw = pb.Payload.FromString(
        encode_payload(Payload(None, None, [Metric("b", DataType.BooleanArray, values)]))
    )
    packed = raw.metrics[0].bytes_value
    assert packed[:5] == bytes([0x0C, 0, 0, 0, 0x34]) and packed[5] & 0xF0 == 0xD0  # spec: 0x34, 0xDX


def test_float_and_double_arrays_are_little_endian() -> None:
    """The spec's Float/DoubleArray examples print big-endian bytes; Tahu packs little-endian."""
    raw = pb.Payload.FromString(
        encode_payload(Payload(None, None, [Metric("f", DataType.FloatArray, (1.5,))]))
    )
    assert raw.metrics[0].bytes_value == struct.pack("<f", 1.5)


def test_null_is_sent_as_is_null_without_a_value() -> None:
    raw = pb.Payload.FromString(encode_payload(Payload(None, None, [Metric("z", DataType.Double, None)])))
    assert raw.metrics[0].is_null and raw.metrics[0].WhichOneof("value") is None
    assert roundtrip(Metric("z", DataType.Double, None)).value is None


def test_flags_alias_and_payload_fields_round_trip() -> None:
    m = Metric("h", DataType.Int32, -7, alias=12, timestamp=5, is_historical=True, is_transient=True)
    decoded = decode_payload(encode_payload(Payload(99, 255, [m])))
    assert (decoded.timestamp, decoded.seq) == (99, 255)
    assert decoded.metrics[0] == m


def test_engineering_unit_and_range_properties_as_ignition_names_them() -> None:
    props = engineering_properties("rpm", 0, 24000)
    out = roundtrip(Metric("speed", DataType.Double, 1.0, properties=props))
    assert out.properties == {
        "engUnit": Property(DataType.String, "rpm"),
        "engLow": Property(DataType.Double, 0.0),
        "engHigh": Property(DataType.Double, 24000.0),
    }
    assert unit_and_range(out.properties) == ("rpm", 0.0, 24000.0)
    # Tahu's own examples also send the range as Int32; capitalised keys (Node-RED) are read too.
    other = {"EngUnit": Property(DataType.String, "bar"), "engLow": Property(DataType.Int32, -5)}
    assert unit_and_range(roundtrip(Metric("p", DataType.Float, 1.0, properties=other)).properties) == (
        "bar",
        -5.0,
        None,
    )


def test_nested_property_set_null_property_and_quality() -> None:
    props = {
        "Quality": Property(DataType.Int32, 192),
        "nested": Property(DataType.PropertySet, {"a": Property(DataType.UInt64, 2**64 - 1)}),
        "gone": Property(DataType.String, None),
    }
    out = roundtrip(Metric("q", DataType.Boolean, True, properties=props))
    assert out.properties == props and quality(out.properties) == 192


def test_data_metrics_take_their_type_from_the_birth() -> None:
    data = encode_metrics(1, 3, [Metric(None, None, -2, alias=4)], [DataType.Int16])
    raw = pb.Payload.FromString(data).metrics[0]
    assert not raw.HasField("datatype") and not raw.HasField("name") and raw.int_value == 65534
    decoded = decode_payload(data, lambda alias, name: DataType.Int16 if alias == 4 else None)
    assert decoded.metrics[0].value == -2 and decoded.metrics[0].alias == 4
    with pytest.raises(UnknownMetricError) as err:
        decode_payload(data, lambda alias, name: None)
    assert err.value.alias == 4


@pytest.mark.parametrize(
    ("datatype", "value"),
    [
        (DataType.Int8, 128),
        (DataType.Int8, -129),
        (DataType.UInt16, -1),
        (DataType.UInt64, 2**64),
        (DataType.Int32, 1.5),
        (DataType.Boolean, 1),
        (DataType.String, b"x"),
        (DataType.DateTime, -1),
        (DataType.Int8Array, (1, 200)),
        (DataType.StringArray, ("a\0b",)),
        (DataType.DataSet, 1),
    ],
)
def test_values_that_do_not_fit_are_refused_clearly(datatype: DataType, value: Any) -> None:
    with pytest.raises(PayloadError, match="metric 'bad'"):
        encode_payload(Payload(None, None, [Metric("bad", datatype, value)]))


def test_garbage_and_inconsistent_payloads_raise_payload_error() -> None:
    with pytest.raises(PayloadError, match="not a Sparkplug B protobuf"):
        decode_payload(b"\xff\xff\xff")
    msg = pb.Payload()
    msg.metrics.add(name="x", datatype=DataType.Double, string_value="no")
    with pytest.raises(PayloadError, match="expected double_value"):
        decode_payload(msg.SerializeToString())
    msg = pb.Payload()
    msg.metrics.add(name="x", datatype=DataType.Int32Array, bytes_value=b"\x01\x02\x03")
    with pytest.raises(PayloadError, match="multiple of 4"):
        decode_payload(msg.SerializeToString())
    msg = pb.Payload()
    msg.metrics.add(name="x", datatype=99, int_value=1)
    with pytest.raises(PayloadError, match="datatype 99"):
        decode_payload(msg.SerializeToString())
    msg = pb.Payload()
    msg.metrics.add(name="x", datatype=DataType.Int32, int_value=1).properties.keys.append("orphan")
    with pytest.raises(PayloadError, match="1 keys but 0 values"):
        decode_payload(msg.SerializeToString())


def test_float_is_rounded_to_32_bits() -> None:
    out = roundtrip(Metric("f", DataType.Float, 0.1)).value
    assert isinstance(out, float) and out == struct.unpack("<f", struct.pack("<f", 0.1))[0]
    assert not math.isclose(out, 0.1, rel_tol=1e-12)
