"""The wire's new value shapes: arrays, structures, exact UInt64, meta dims/enum/locale, clock offset."""

from __future__ import annotations

import orjson
import pytest

from plantwire import wire


def _data(v: object) -> bytes:
    return orjson.dumps({"seq": 1, "sent": 1, "values": [{"tag": "t", "ts": 5, "v": v, "q": 0}]})


@pytest.mark.parametrize(
    "value",
    [[57.0, 114.0, -57.0], [[1, 2], [3, 4]], {"Low": 1.5, "High": 3.25}, [{"a": [1, "x", None, True]}], []],
)
def test_arrays_and_structures_decode_natively_or_as_json_text(value: object) -> None:
    (native,) = wire.decode_data(_data(value), compound="native").samples
    assert native.value == value
    (text,) = wire.decode_data(_data(value)).samples
    assert isinstance(text.value, str) and orjson.loads(text.value) == value


def test_uint64_above_int64_travels_as_an_exact_decimal_string() -> None:
    big = str(2**64 - 1)
    (s,) = wire.decode_data(_data(big)).samples
    assert s.value == big and int(big) == wire.MAX_UINT64


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ([[[[[[[[[1]]]]]]]]], "deeper than 8"),
        ([2**63], "64-bit"),
        ({"a": "x" * (wire.MAX_STRING_VALUE + 1)}, "longer than"),
    ],
)
def test_bad_compound_values_are_refused_with_the_field(value: object, where: str) -> None:
    with pytest.raises(wire.WireError, match=r"values\[0\]\.v") as err:
        wire.decode_data(_data(value))
    assert where in str(err.value)


def test_meta_carries_dims_enum_and_locale() -> None:
    tags = [
        wire.TagInfo("Vector", "ns=2;s=V", "Double", dims=(3,)),
        wire.TagInfo("State", "ns=2;s=S", "MachineState", enum={0: "Idle", 1: "Running"}),
        wire.TagInfo("Label", "ns=2;s=L", "LocalizedText", locale="de-DE"),
        wire.TagInfo("Plain", "ns=2;s=P", "Double"),
    ]
    payload = wire.encode_meta(wire.DeviceMeta("opc.tcp://h:1", "ns=2;s=m", tags, sent=1))
    assert wire.decode_meta(payload).tags == tags
    assert "dims" not in orjson.loads(payload)["tags"][3]
    bad = orjson.loads(payload)
    bad["tags"][1]["enum"] = {"one": "Idle"}
    with pytest.raises(wire.WireError, match=r"tags\[1\]\.enum"):
        wire.decode_meta(orjson.dumps(bad))


def test_device_status_carries_the_clock_offset() -> None:
    status = wire.DeviceStatus("online", 1, "opc.tcp://h:1", None, clock_offset_ms=3_600_000.5)
    assert wire.decode_device_status(wire.encode_device_status(status)) == status
    old = wire.DeviceStatus("offline", 1, "opc.tcp://h:1", "refused")
    assert "clock_offset_ms" not in orjson.loads(wire.encode_device_status(old))


def test_call_arguments_may_be_arrays_and_structures() -> None:
    cmd = wire.Command("c1", "call", "d", {"method": "M", "args": ["x", [1.0, 2.0], {"Name": "T"}]}, 1, 2)
    assert wire.decode_command(wire.encode_command(cmd)).args == cmd.args
    assert "too_many_operations" in wire.REPLY_CODES
