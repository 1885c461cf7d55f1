"""The wire contract: round trips, clear rejections, and a decoder that never crashes."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwire import wire


def test_data_round_trip_keeps_every_field() -> None:
    batch = wire.DataBatch(
        seq=7,
        sent=1_764_000_000_500_000,
        samples=[
            wire.Sample("Spindle/Speed", 1_764_000_000_400_001, 8012.5),
            wire.Sample("Status/State", 1_764_000_000_400_002, "RUNNING"),
            wire.Sample("Production/PartCount", 1_764_000_000_400_003, 42),
            wire.Sample("Door/Open", 1_764_000_000_400_004, True),
            wire.Sample("Spindle/Load", 1_764_000_000_400_005, None, wire.STATUS_BAD_NO_COMMUNICATION),
            wire.Sample("Spindle/Speed", 1_764_000_000_300_000, 7990.0, historical=True),
        ],
    )
    assert wire.decode_data(wire.encode_data(batch)) == batch


def test_data_message_is_readable_json() -> None:
    payload = wire.encode_data(wire.DataBatch(1, 5, [wire.Sample("A/B", 4, 1.5)]))
    assert orjson.loads(payload) == {
        "seq": 1,
        "sent": 5,
        "values": [{"tag": "A/B", "ts": 4, "v": 1.5, "q": 0}],
    }
    back_filled = wire.encode_data(wire.DataBatch(2, 5, [wire.Sample("A/B", 3, 1.0, historical=True)]))
    assert orjson.loads(back_filled)["values"] == [{"tag": "A/B", "ts": 3, "v": 1.0, "q": 0, "h": True}]


def test_meta_and_status_round_trip() -> None:
    meta = wire.DeviceMeta(
        endpoint="opc.tcp://127.0.0.1:4840",
        root="ns=2;s=cnc-1",
        tags=[
            wire.TagInfo("Spindle/SpeedSetpoint", "ns=2;s=x", "Double", "rpm", "set", True, 0.0, 12000.0),
            wire.TagInfo("Status/State", "ns=2;s=y", "String"),
        ],
        sent=3,
    )
    assert wire.decode_meta(wire.encode_meta(meta)) == meta
    dev = wire.DeviceStatus("offline", 9, "opc.tcp://h:1", "connection refused")
    assert wire.decode_device_status(wire.encode_device_status(dev)) == dev
    gw = wire.GatewayStatus("online", 10, "0.1.0")
    assert wire.decode_gateway_status(wire.encode_gateway_status(gw)) == gw


def test_topics_round_trip() -> None:
    assert wire.parse_topic(wire.device_topic("gw1", "cnc-1", "data")) == wire.Topic("gw1", "cnc-1", "data")
    assert wire.parse_topic(wire.gateway_status_topic("gw1")) == wire.Topic("gw1", None, "status")


@pytest.mark.parametrize(
    "topic",
    ["plantwire/v2/gw/dev/data", "plantwire/v1/gw/dev/other", "plantwire/v1/gw", "plantwire/v1/g w/d/data",
     "plantwire/v1/gw/dev/data/extra", "other/v1/gw/dev/data"],
)  # fmt: skip
def test_bad_topics_are_rejected(topic: str) -> None:
    with pytest.raises(wire.WireError):
        wire.parse_topic(topic)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"not json", "not valid JSON"),
        (b"[1,2]", "JSON object"),
        (b'{"seq": 0, "sent": 1, "values": []}', "starts at 1"),
        (b'{"seq": -1, "sent": 1, "values": []}', "'seq'"),
        (b'{"seq": 1, "values": []}', "'sent'"),
        (b'{"seq": 1, "sent": 1, "values": {}}', "'values'"),
        (b'{"seq": 1, "sent": 1, "values": [{"tag": "", "ts": 1, "v": 1}]}', "values[0].tag"),
        (b'{"seq": 1, "sent": 1, "values": [{"tag": "a", "ts": 1.5, "v": 1}]}', "values[0].ts"),
        (
            b'{"seq": 1, "sent": 1, "values": [{"tag": "a", "ts": 1, "v": [[[[[[[[[1]]]]]]]]]}]}',
            "values[0].v",
        ),
        (b'{"seq": 1, "sent": 1, "values": [{"tag": "a", "ts": 1, "v": [9223372036854775808]}]}', "64-bit"),
        (b'{"seq": 1, "sent": 1, "values": [{"tag": "a", "ts": 1, "v": 1, "q": -1}]}', "values[0].q"),
        (b'{"seq": 1, "sent": 1, "values": [{"tag": "a", "ts": 1, "v": 9223372036854775808}]}', "64-bit"),
        (
            b'{"seq": 1, "sent": 1, "values": [{"tag": "a", "ts": 9223372036854775808, "v": 1}]}',
            "values[0].ts",
        ),
        (b'{"seq": 18446744073709551615, "sent": 1, "values": []}', "64-bit"),
        (b'{"seq": 1, "sent": 1, "values": [{"tag": "a", "ts": 1, "v": 1, "h": 1}]}', "values[0].h"),
    ],
)
def test_bad_data_payloads_say_which_field(payload: bytes, needle: str) -> None:
    with pytest.raises(wire.WireError, match=None) as info:
        wire.decode_data(payload)
    assert needle in str(info.value)


def test_oversized_payload_is_rejected_before_parsing() -> None:
    with pytest.raises(wire.WireError, match="exceeds the limit"):
        wire.decode_data(b" " * (wire.MAX_PAYLOAD_BYTES + 1))


def test_too_many_values_are_rejected() -> None:
    values = [{"tag": "a", "ts": i, "v": 1} for i in range(wire.MAX_VALUES_PER_MESSAGE + 1)]
    with pytest.raises(wire.WireError, match="at most"):
        wire.decode_data(orjson.dumps({"seq": 1, "sent": 1, "values": values}))


@pytest.mark.parametrize("bad", ["", "a/b", "a+b", "#", "-lead", "x" * 65, "sp ace"])
def test_ids_must_be_single_safe_topic_levels(bad: str) -> None:
    with pytest.raises(wire.WireError):
        wire.check_id("device", bad)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        json_values.map(orjson.dumps),
        st.fixed_dictionaries(
            {"seq": json_values, "sent": json_values, "values": st.lists(json_values, max_size=3)}
        ).map(orjson.dumps),
    )
)
def test_decoders_raise_only_wire_errors(payload: bytes) -> None:
    """Whatever arrives on a topic, decoding either succeeds or raises WireError: never anything else."""
    for decode in (wire.decode_data, wire.decode_meta, wire.decode_device_status, wire.decode_gateway_status):
        try:
            decode(payload)
        except wire.WireError:
            pass


def test_quality_uses_the_top_two_bits_of_the_status_code() -> None:
    assert wire.quality(0) == "good"
    assert wire.quality(0x00A20000) == "good"  # GoodLocalOverride
    assert wire.quality(0x40000000) == "uncertain"
    assert wire.quality(0x80000000) == "bad"
    assert wire.quality(0xC0000000) == "bad"
    assert wire.quality(wire.STATUS_BAD_NO_COMMUNICATION) == "bad"
