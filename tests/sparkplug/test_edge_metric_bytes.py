"""DDATA metrics encoded when the gateway stores them (`metric_bytes`, `EdgeNode.encode_samples` and
`ddata_of_row`): byte for byte what protobuf makes of the same values through `EdgeNode.update`, the
same report by exception, and aliases that keep their meaning across a rebirth and a restart."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from plantwire import wire
from plantwire.sparkplug import sparkplug_b_pb2 as pb
from plantwire.sparkplug.edge import EdgeNode, MetricSpec, Sample
from plantwire.sparkplug.host import HostApplication
from plantwire.sparkplug.metric_bytes import ROW_MAGIC, pack_row, unpack_row
from plantwire.sparkplug.metric_slots import wire_metric_value
from plantwire.sparkplug.payload import DataType
from plantwire.sparkplug.protobuf_fields import read_varint, varint
from plantwire.sparkplug.tag_types import sparkplug_quality
from plantwire_gateway.outbox import Outbox
from plantwire_gateway.service import SPARKPLUG_OUTBOX_FILE

US = 1_700_000_000_123_456
INT_RANGES = {
    DataType.Int8: (-(2**7), 2**7 - 1),
    DataType.Int16: (-(2**15), 2**15 - 1),
    DataType.Int32: (-(2**31), 2**31 - 1),
    DataType.Int64: (-(2**63), 2**63 - 1),
    DataType.UInt8: (0, 2**8 - 1),
    DataType.UInt16: (0, 2**16 - 1),
    DataType.UInt32: (0, 2**32 - 1),
    DataType.UInt64: (0, 2**64 - 1),
}
SPECS = [
    MetricSpec("speed", DataType.Double),
    MetricSpec("temp", DataType.Float),
    MetricSpec("on", DataType.Boolean),
    MetricSpec("label", DataType.String),
    MetricSpec("note", DataType.Text),
    MetricSpec("when", DataType.DateTime),
    MetricSpec("shape", DataType.String),  # an array tag: its JSON text, as the gateway sends it
    *(MetricSpec(dt.name.lower(), dt) for dt in INT_RANGES),
]
TYPES = {spec.name: spec.datatype for spec in SPECS}


def node_pair() -> tuple[EdgeNode, EdgeNode]:
    """Two born edge nodes with the same (still) clock, aliases and seq: one encodes each way."""
    nodes = []
    for _ in range(2):
        node = EdgeNode("g1", "gw1", clock=lambda: 1_700_000_000_000)
        node.will()
        node.add_device("press", SPECS)
        node.on_connected()
        nodes.append(node)
    return nodes[0], nodes[1]


def as_edge_sample(s: wire.Sample) -> Sample:
    return Sample(
        s.tag,
        wire_metric_value(TYPES[s.tag], s.value),
        s.ts // 1000,
        historical=s.historical,
        quality=sparkplug_quality(s.status),
    )


def values_for(dt: DataType) -> st.SearchStrategy[object]:
    if dt in INT_RANGES:
        low, high = INT_RANGES[dt]
        return st.integers(low, high) | st.sampled_from([low, high, 0, -1 if low else 1])
    if dt is DataType.Double:
        return st.floats(allow_nan=False) | st.integers(-(2**53), 2**53) | st.just(math.inf)
    if dt is DataType.Float:
        return st.floats(width=32, allow_nan=False) | st.just(1e39) | st.just(-0.0)  # 1e39: inf as float32
    if dt is DataType.Boolean:
        return st.booleans()
    if dt in (DataType.String, DataType.Text):
        return st.text(max_size=200) | st.just("") | st.integers()  # an int goes as its text
    if dt is DataType.DateTime:
        return st.integers(0, 2**53)
    raise AssertionError(dt)


samples_st = st.lists(
    st.sampled_from(SPECS).flatmap(
        lambda spec: st.builds(
            wire.Sample,
            st.just(spec.name),
            st.integers(0, 2**53),
            (
                st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=4)
                if spec.name == "shape"
                else values_for(spec.datatype)
            )
            | st.none(),
            st.sampled_from([wire.STATUS_GOOD, 0x40000000, 0x80000000]),
            st.booleans(),
        )
    ),
    max_size=40,
)


@settings(max_examples=120, deadline=None)
@given(batches=st.lists(samples_st, min_size=1, max_size=4))
def test_metrics_encoded_at_store_time_are_the_bytes_protobuf_makes_of_the_same_values(
    batches: list[list[wire.Sample]],
) -> None:
    by_hand, by_protobuf = node_pair()
    for samples in batches:
        enc = by_hand.encode_samples("press", samples)
        assert not enc.unknown and not enc.refused
        row = unpack_row(pack_row(US, by_hand.epoch("press"), enc.data))
        got = by_hand.ddata_of_row("press", row.metrics, row.epoch)
        want = by_protobuf.update("press", [as_edge_sample(s) for s in samples])
        assert [(o.topic, o.payload) for o in got] == [(o.topic, o.payload) for o in want]
        assert enc.added == (len(pb.Payload.FromString(want[0].payload).metrics) if want else 0)


def test_unchanged_values_are_left_out_and_a_quality_change_is_not() -> None:
    node, _ = node_pair()
    first = node.encode_samples("press", [wire.Sample("speed", US, 1.5), wire.Sample("int8", US, -3)])
    assert first.added == 2
    again = node.encode_samples("press", [wire.Sample("speed", US + 1000, 1.5), wire.Sample("int8", US, -3)])
    assert again.added == 0 and again.data == b""
    stale = node.encode_samples("press", [wire.Sample("speed", US + 2000, 1.5, status=0x40000000)])
    history = node.encode_samples("press", [wire.Sample("int8", US - 5000, -3, historical=True)])
    assert stale.added == 1 and history.added == 1  # historical values always go, flagged
    (m,) = pb.Payload.FromString(history.data).metrics
    assert m.is_historical and m.int_value == 253  # -3 as Int8, the Tahu way


def test_samples_of_unknown_tags_come_back_with_nothing_recorded() -> None:
    node, _ = node_pair()
    enc = node.encode_samples("press", [wire.Sample("speed", US, 2.0), wire.Sample("nope", US, 1)])
    assert enc.added == 1 and [s.tag for s in enc.unknown] == ["nope"]
    assert node.encode_samples("other", [wire.Sample("speed", US, 2.0)]).unknown  # unknown device


def test_a_value_that_does_not_fit_is_refused_alone() -> None:
    node, _ = node_pair()
    enc = node.encode_samples("press", [wire.Sample("int8", US, 300), wire.Sample("speed", US, 3.0)])
    assert enc.added == 1 and len(enc.refused) == 1 and "Int8" in enc.refused[0]
    assert enc.refused[0].count("metric alias") == 1  # named once


def test_a_backlog_row_goes_out_historical_and_takes_the_next_seq_when_published() -> None:
    node, _ = node_pair()
    enc = node.encode_samples("press", [wire.Sample("speed", US, 4.0), wire.Sample("on", US, True)])
    (out,) = node.ddata_of_row("press", enc.data, node.epoch("press"), historical=True)
    payload = pb.Payload.FromString(out.payload)
    assert [m.is_historical for m in payload.metrics] == [True, True]
    assert payload.seq == 2  # after NBIRTH 0 and DBIRTH 1
    (live,) = node.ddata_of_row("press", enc.data, node.epoch("press"))
    assert (
        pb.Payload.FromString(live.payload).seq == 3
        and not pb.Payload.FromString(live.payload).metrics[0].is_historical
    )


def decode_with(host: HostApplication, node: EdgeNode, outs: list[object]) -> dict[str, object]:
    values: dict[str, object] = {}
    for out in outs:
        result = host.on_message(out.topic, out.payload)  # type: ignore[attr-defined]
        assert not result.errors and not result.publish, result
        values.update({r.metric: r.value for r in result.records})
    return values


def host_seeing(node: EdgeNode) -> HostApplication:
    host = HostApplication("plantwire", clock=lambda: 1)
    node.on_disconnected()
    node.will()
    for out in node.on_connected():
        host.on_message(out.topic, out.payload)
    return host


def test_rows_stored_before_a_restart_mean_the_same_metrics_after_it() -> None:
    before = EdgeNode("g1", "gw1")
    before.add_device("press", [MetricSpec("a", DataType.Double), MetricSpec("b", DataType.Int32)])
    before.add_device("oven", [MetricSpec("t", DataType.Double)])
    rows = {
        d: before.encode_samples(d, samples).data
        for d, samples in {
            "press": [wire.Sample("a", US, 1.25), wire.Sample("b", US, -7)],
            "oven": [wire.Sample("t", US, 250.0)],
        }.items()
    }
    assert before.aliases_changed
    kept = before.aliases_state()
    assert not before.aliases_changed

    after = EdgeNode("g1", "gw1")
    after.restore_aliases(kept)
    # devices come back in another order, one with a new tag first: without the kept aliases,
    # "oven"'s "t" would take the alias "press"'s "a" had
    after.add_device("oven", [MetricSpec("t", DataType.Double)])
    after.add_device(
        "press",
        [
            MetricSpec("new", DataType.Double),
            MetricSpec("a", DataType.Double),
            MetricSpec("b", DataType.Int32),
        ],
    )
    host = host_seeing(after)
    press = decode_with(host, after, after.ddata_of_row("press", rows["press"], after.epoch("press")))
    oven = decode_with(host, after, after.ddata_of_row("oven", rows["oven"], after.epoch("oven")))
    assert press == {"a": 1.25, "b": -7} and oven == {"t": 250.0}


def test_a_metric_removed_or_retyped_since_the_row_is_left_out_and_counted() -> None:
    node = EdgeNode("g1", "gw1")
    node.add_device("press", [MetricSpec("a", DataType.Double), MetricSpec("b", DataType.Int32)])
    epoch = node.epoch("press")
    data = node.encode_samples("press", [wire.Sample("a", US, 1.0), wire.Sample("b", US, 5)]).data
    node.add_device("press", [MetricSpec("a", DataType.Double), MetricSpec("b", DataType.Float)])  # b retyped
    assert node.epoch("press") == epoch + 1
    host = host_seeing(node)
    values = decode_with(host, node, node.ddata_of_row("press", data, epoch))
    assert values == {"a": 1.0}
    assert [(d.device_id, d.dropped) for d in node.row_drops] == [("press", 1)]
    # the retyped metric has a new alias; the old one is never reused
    retyped = node.encode_samples("press", [wire.Sample("b", US, 5.5)]).data
    assert decode_with(host, node, node.ddata_of_row("press", retyped, node.epoch("press"))) == {"b": 5.5}


def test_varints_round_trip_and_rows_say_what_they_are() -> None:
    for n in [0, 1, 127, 128, 16383, 16384, 2**41 + 5, 2**63, 2**64 - 1]:
        assert read_varint(varint(n) + b"x", 0) == (n, len(varint(n)))
    row = pack_row(US, 3, b"\x12\x00")
    assert row.startswith(ROW_MAGIC) and unpack_row(row).sent_us == US and unpack_row(row).epoch == 3
    for bad in (b'{"seq": 1}', ROW_MAGIC + b"\x80"):
        try:
            unpack_row(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was read as a row")


async def spoil_kept_aliases(data_dir: Path) -> None:
    outbox = await Outbox.open(data_dir / SPARKPLUG_OUTBOX_FILE, 1_000_000)
    await outbox.append_encoded("press", [pack_row(US, 0, b"")], b"not the aliases")
    await outbox.close()


def test_an_outbox_whose_kept_aliases_cannot_be_read_stops_the_gateway_with_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "gw"
    asyncio.run(spoil_kept_aliases(data_dir))
    config = tmp_path / "gateway.toml"
    config.write_text('id = "gw1"\nnorthbound = "sparkplug"\n')
    done = subprocess.run(
        [sys.executable, "-m", "plantwire", "gateway", "--config", str(config), "--data-dir", str(data_dir),
         "--mqtt-port", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert "metric aliases kept in" in line and "1 unsent rows" in line and "move the file away" in line
