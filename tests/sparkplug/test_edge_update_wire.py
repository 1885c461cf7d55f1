"""DDATA straight from the gateway's JSON wire items (`EdgeNode.update_wire`), read back by the host's
DATA fast path: the same values, types, refusals and change detection as `EdgeNode.update`."""

from __future__ import annotations

import itertools

import pytest

from plantwire.sparkplug import sparkplug_b_pb2 as pb
from plantwire.sparkplug.edge import EdgeNode, MetricSpec, Sample
from plantwire.sparkplug.host import HostApplication
from plantwire.sparkplug.payload import QUALITY_STALE, DataType, PayloadError, decode_payload
from plantwire.sparkplug.topics import Outgoing

SPECS = [
    MetricSpec("speed", DataType.Double),
    MetricSpec("temp", DataType.Float),
    MetricSpec("count", DataType.Int8),
    MetricSpec("total", DataType.UInt64),
    MetricSpec("on", DataType.Boolean),
    MetricSpec("label", DataType.String),
    MetricSpec("when", DataType.DateTime),
]
US = 1_700_000_000_123_456  # µs on the wire, ms in Sparkplug


def pair() -> tuple[EdgeNode, HostApplication]:
    clock = itertools.count(1_700_000_000_000)
    node = EdgeNode("g1", "gw1", clock=lambda: next(clock))
    host = HostApplication("plantwire", clock=lambda: 1)
    node.will()
    node.add_device("press", SPECS)
    for out in node.on_connected():
        host.on_message(out.topic, out.payload)
    return node, host


def item(tag: str, v: object, q: int = 0, ts: int = US) -> dict[str, object]:
    return {"tag": tag, "ts": ts, "v": v, "q": q}


def feed(host: HostApplication, outs: list[Outgoing]) -> dict[str, tuple[object, int]]:
    records = {}
    for out in outs:
        result = host.on_message(out.topic, out.payload)
        assert not result.errors and not result.publish
        records.update({r.metric: (r.value, r.timestamp) for r in result.records})
    return records


def test_wire_items_become_a_ddata_with_the_values_the_host_reads_back() -> None:
    node, host = pair()
    items = [
        item("speed", 12.5), item("temp", 3), item("count", -5), item("total", 2**64 - 1),
        item("on", False), item("label", ""), item("when", US), item("speed", 0.0, ts=US + 1000),
    ]  # fmt: skip
    (out,) = node.update_wire("press", items)
    metrics = pb.Payload.FromString(out.payload).metrics
    assert [m.WhichOneof("value") for m in metrics][:3] == ["double_value", "float_value", "int_value"]
    assert metrics[2].int_value == 251  # Int8 -5 as two's complement
    assert all(not m.HasField("datatype") and not m.HasField("name") for m in metrics)
    records = feed(host, [out])
    assert records == {
        "speed": (0.0, US // 1000 + 1),  # the second value of the message is the last one
        "temp": (3.0, US // 1000),
        "count": (-5, US // 1000),
        "total": (2**64 - 1, US // 1000),
        "on": (False, US // 1000),
        "label": ("", US // 1000),
        "when": (US // 1000, US // 1000),  # DateTime: µs on the wire -> ms
    }


def test_unchanged_values_are_not_sent_and_a_new_quality_is() -> None:
    node, _ = pair()
    assert node.update_wire("press", [item("count", 1), item("on", True)])
    assert node.update_wire("press", [item("count", 1, ts=US + 1), item("on", True)]) == []
    (out,) = node.update_wire("press", [item("count", 1, q=0x40000000)])  # Uncertain: stale
    (m,) = pb.Payload.FromString(out.payload).metrics
    assert list(m.properties.keys) == ["Quality"] and m.properties.values[0].int_value == QUALITY_STALE
    (hist,) = node.update_wire("press", [item("count", 1, q=0x40000000)], historical=True)
    assert pb.Payload.FromString(hist.payload).metrics[0].is_historical  # historical: always sent


def test_compound_values_travel_as_json_text_and_null_as_is_null() -> None:
    node, host = pair()
    (out,) = node.update_wire("press", [item("label", [1, {"a": 2}]), item("speed", None)])
    metrics = pb.Payload.FromString(out.payload).metrics
    assert metrics[0].string_value == '[1,{"a":2}]' and metrics[1].is_null
    assert feed(host, [out])["speed"] == (None, US // 1000)


def test_a_value_that_does_not_fit_refuses_the_message_and_records_nothing() -> None:
    node, _ = pair()
    with pytest.raises(PayloadError, match="alias 3: 128 does not fit Int8"):
        node.update_wire("press", [item("speed", 1.0), item("count", 128)])
    with pytest.raises(PayloadError, match="Boolean needs a bool"):
        node.update_wire("press", [item("on", 1)])
    with pytest.raises(KeyError, match="no metric 'nope'"):
        node.update_wire("press", [item("nope", 1)])
    (out,) = node.update_wire("press", [item("speed", 1.0)])  # not recorded by the refused message
    assert pb.Payload.FromString(out.payload).seq == 2  # the refused ones took no seq
    (dbirth,) = node.add_device("press", SPECS)
    births = {m.name: m.value for m in decode_payload(dbirth.payload).metrics}
    assert births["speed"] == 1.0 and births["count"] is None


def test_update_and_update_wire_make_the_same_bytes() -> None:
    a, _ = pair()
    b, _ = pair()
    (from_samples,) = a.update("press", [Sample("count", -7, US // 1000), Sample("speed", 2.5, US // 1000)])
    (from_wire,) = b.update_wire("press", [item("count", -7), item("speed", 2.5)])
    assert from_samples.payload == from_wire.payload


def test_host_reads_other_encodings_of_a_data_value() -> None:
    """What other edge nodes send: a Double in float_value, a metric by name, one with its
    datatype, an unknown alias (a rebirth request)."""
    node, host = pair()
    (out,) = node.update_wire("press", [item("speed", 1.0)])
    aliases = {m.name: m.alias for m in decode_payload(node.add_device("press", SPECS)[0].payload).metrics}
    host.on_message(out.topic, out.payload)
    msg = pb.Payload(timestamp=5, seq=3)  # the DBIRTH above took seq 2
    msg.metrics.add(alias=aliases["speed"], timestamp=7, float_value=0.5)
    msg.metrics.add(name="count", timestamp=7, int_value=0xFFFFFFFF)  # by name; Tahu's sign extension
    msg.metrics.add(alias=aliases["on"], datatype=DataType.Boolean, boolean_value=True)  # no timestamp
    result = host.on_message(out.topic, msg.SerializeToString())
    assert not result.errors
    assert [(r.metric, r.value, r.timestamp) for r in result.records] == [
        ("speed", 0.5, 7), ("count", -1, 7), ("on", True, 5),
    ]  # fmt: skip
    unknown = pb.Payload(timestamp=5, seq=4)
    unknown.metrics.add(alias=999, timestamp=7, double_value=1.0)
    refused = host.on_message(out.topic, unknown.SerializeToString())
    assert refused.records == [] and "999" in refused.errors[0] and refused.publish


def test_the_link_reads_its_rows_and_refuses_what_is_not_a_data_batch() -> None:
    from plantwire import wire
    from plantwire_gateway.sparkplug_link import _row_items

    row = wire.encode_data(wire.DataBatch(3, US, [wire.Sample("speed", US, 1.5, 0x40000000)]))
    assert _row_items(row) == (US, [{"tag": "speed", "ts": US, "v": 1.5, "q": 0x40000000}])
    for bad in (b"not json", b"[1, 2]", b'{"seq": 1, "sent": "x", "values": []}', b'{"sent": 1}'):
        with pytest.raises(wire.WireError):
            _row_items(bad)


def test_values_read_back_from_history_go_out_historical_and_leave_the_current_value_alone() -> None:
    node, _ = pair()
    (live,) = node.update_wire("press", [item("speed", 5.0, ts=US + 5000)])
    backfill = [
        dict(item("speed", 5.0, ts=US + 1000), h=True),
        dict(item("speed", 4.0, ts=US + 2000), h=True),
    ]
    (old,) = node.update_wire("press", backfill)
    metrics = pb.Payload.FromString(old.payload).metrics
    # Both sent (no report by exception against the live value), both flagged is_historical
    assert [(m.double_value, m.timestamp, m.is_historical) for m in metrics] == [
        (5.0, (US + 1000) // 1000, True),
        (4.0, (US + 2000) // 1000, True),
    ]
    assert not pb.Payload.FromString(live.payload).metrics[0].is_historical
    # The current value is still the live 5.0: the same live value again is not re-sent
    assert node.update_wire("press", [item("speed", 5.0, ts=US + 6000)]) == []
