"""The edge node session, checked message by message against the spec's tck-id assertions."""

from __future__ import annotations

import itertools

import pytest

from plantwire.sparkplug import sparkplug_b_pb2 as pb
from plantwire.sparkplug.edge import REBIRTH, EdgeNode, MetricSpec, Sample
from plantwire.sparkplug.payload import (
    QUALITY_BAD,
    DataType,
    Metric,
    Payload,
    PayloadError,
    decode_payload,
    encode_metrics,
    encode_payload,
    engineering_properties,
)
from plantwire.sparkplug.topics import Outgoing, encode_state

SPECS = [
    MetricSpec("speed", DataType.Double, engineering_properties("rpm", 0, 24000)),
    MetricSpec("count", DataType.Int32),
    MetricSpec("name", DataType.String),
]


def make_node(**kwargs: object) -> EdgeNode:
    clock = itertools.count(1_700_000_000_000)
    return EdgeNode("g1", "gw1", clock=lambda: next(clock), **kwargs)  # type: ignore[arg-type]


def started(node: EdgeNode | None = None) -> tuple[EdgeNode, list[Outgoing]]:
    node = node or make_node()
    node.will()
    node.add_device("press", SPECS, [Sample("speed", 1.5, 10), Sample("count", -3, 10)])
    return node, node.on_connected()


def raw(out: Outgoing) -> pb.Payload:
    return pb.Payload.FromString(out.payload)


def test_tck_id_payloads_ndeath_will_message_qos_retain_and_bdseq() -> None:
    node = make_node()
    will = node.will()
    assert will.topic == "spBv1.0/g1/NDEATH/gw1" and (will.qos, will.retain) == (1, False)
    p = raw(will)
    assert not p.HasField("seq")  # tck-id-payloads-ndeath-seq
    assert [(m.name, m.datatype, m.long_value) for m in p.metrics] == [("bdSeq", DataType.Int64, 0)]


def test_tck_id_topics_nbirth_seq_num_bdseq_and_rebirth_metric() -> None:
    node, out = started()
    nbirth, _ = out
    assert nbirth.topic == "spBv1.0/g1/NBIRTH/gw1" and (nbirth.qos, nbirth.retain) == (0, False)
    p = decode_payload(nbirth.payload)
    assert p.seq == 0 and p.timestamp is not None
    by_name = {m.name: m for m in p.metrics}
    assert by_name["bdSeq"].value == raw(node.shutdown()[0]).metrics[0].long_value == 0
    rebirth = by_name[REBIRTH]
    # tck-id-operational-behavior-data-commands-rebirth-name-aliases / -datatype / -value
    assert rebirth.datatype is DataType.Boolean and rebirth.value is False and rebirth.alias is None
    assert all(m.timestamp is not None for m in p.metrics)  # tck-id-payloads-name-birth-data-requirement


def test_tck_id_topics_dbirth_metrics_names_aliases_types_properties_values() -> None:
    _, (_, dbirth) = started()
    assert dbirth.topic == "spBv1.0/g1/DBIRTH/gw1/press" and (dbirth.qos, dbirth.retain) == (0, False)
    p = decode_payload(dbirth.payload)
    assert p.seq == 1  # tck-id-topics-dbirth-seq
    got = {m.name: (m.datatype, m.value, m.timestamp) for m in p.metrics}
    assert got == {
        "speed": (DataType.Double, 1.5, 10),
        "count": (DataType.Int32, -3, 10),
        "name": (
            DataType.String,
            None,
            p.timestamp,
        ),  # tck-id-operational-behavior-data-publish-dbirth-values
    }
    aliases = [m.alias for m in p.metrics]
    assert None not in aliases and len(set(aliases)) == 3  # tck-id-payloads-alias-uniqueness
    assert p.metrics[0].properties == engineering_properties("rpm", 0, 24000)


def test_tck_id_payloads_alias_data_cmd_requirement_ddata_by_exception() -> None:
    node, (_, dbirth) = started()
    aliases = {m.name: m.alias for m in decode_payload(dbirth.payload).metrics}
    (ddata,) = node.update("press", [Sample("speed", 1.5, 20), Sample("count", 4, 20)])
    assert ddata.topic == "spBv1.0/g1/DDATA/gw1/press" and (ddata.qos, ddata.retain) == (0, False)
    p = raw(ddata)
    assert p.seq == 2
    (m,) = p.metrics  # speed did not change: not sent
    assert m.alias == aliases["count"] and not m.HasField("name") and not m.HasField("datatype")
    assert m.int_value == 4 and m.timestamp == 20
    assert node.update("press", [Sample("count", 4, 30)]) == []


def test_tck_id_payloads_sequence_num_incrementing_wraps_after_255() -> None:
    node, _ = started()
    seqs = [raw(node.update("press", [Sample("count", i, i)])[0]).seq for i in range(300)]
    assert seqs[:3] == [2, 3, 4]
    assert all(b == (a + 1) % 256 for a, b in itertools.pairwise(seqs))
    assert 255 in seqs and seqs[seqs.index(255) + 1] == 0


def test_tck_id_operational_behavior_device_ddeath_and_back() -> None:
    node, _ = started()
    (ddeath,) = node.device_lost("press")
    assert ddeath.topic == "spBv1.0/g1/DDEATH/gw1/press" and raw(ddeath).seq == 2
    assert node.update("press", [Sample("count", 9, 1)]) == []  # no data for a dead device
    (dbirth,) = node.add_device("press", SPECS)
    p = decode_payload(dbirth.payload)
    assert p.seq == 3 and {m.name: m.value for m in p.metrics}["count"] == 9


def test_tck_id_operational_behavior_data_commands_rebirth_action_bdseq_unchanged() -> None:
    node, first = started()
    node.update("press", [Sample("count", 5, 1)])
    cmd = encode_payload(Payload(1, None, [Metric(REBIRTH, DataType.Boolean, True)]))
    actions = node.on_message("spBv1.0/g1/NCMD/gw1", cmd)
    assert [o.topic for o in actions.publish] == [o.topic for o in first]
    again = [decode_payload(o.payload) for o in actions.publish]
    assert [p.seq for p in again] == [0, 1]
    assert {m.name: m.value for m in again[0].metrics}["bdSeq"] == 0
    assert {m.name: m.value for m in again[1].metrics}["count"] == 5
    assert node.bd_seq == 0


def test_tck_id_topics_nbirth_bdseq_increment_per_connection() -> None:
    node, _ = started()
    node.on_disconnected()
    assert raw(node.will()).metrics[0].long_value == 1
    nbirth = node.on_connected()[0]
    assert {m.name: m.value for m in decode_payload(nbirth.payload).metrics}["bdSeq"] == 1
    assert make_node(bd_seq=255).will() and make_node(bd_seq=256).next_bd_seq == 0


def test_dcmd_becomes_write_requests_for_the_command_path() -> None:
    node, (_, dbirth) = started()
    aliases = {m.name: m.alias for m in decode_payload(dbirth.payload).metrics}
    cmd = encode_metrics(5, None, [Metric(None, None, -8, alias=aliases["count"])], [DataType.Int32])
    actions = node.on_message("spBv1.0/g1/DCMD/gw1/press", cmd)
    assert [(w.device_id, w.metric, w.datatype, w.value) for w in actions.writes] == [
        ("press", "count", DataType.Int32, -8)
    ]
    by_name = encode_payload(Payload(5, None, [Metric("speed", DataType.Double, 3.0)]))
    assert node.on_message("spBv1.0/g1/DCMD/gw1/press", by_name).writes[0].value == 3.0
    wrong = node.on_message(
        "spBv1.0/g1/DCMD/gw1/press",
        encode_metrics(5, None, [Metric(None, None, 1, alias=999)], [DataType.Int32]),
    )
    assert not wrong.writes and "999" in wrong.rejected[0]
    assert node.on_message("spBv1.0/g1/DCMD/gw1/nope", cmd).rejected
    assert node.on_message("spBv1.0/g1/DCMD/gw1/press", b"\xff\xff").rejected


def test_historical_values_are_flagged_and_always_sent() -> None:
    node, _ = started()
    outs = node.update(
        "press", [Sample("count", -3, 5, historical=True), Sample("count", 7, 6, historical=True)]
    )
    metrics = raw(outs[0]).metrics
    assert [(m.is_historical, m.int_value) for m in metrics] == [(True, 2**32 - 3), (True, 7)]


def test_tck_id_message_flow_edge_node_birth_publish_phid_wait() -> None:
    node = make_node(primary_host_id="scada")
    node.will()
    node.add_device("press", SPECS)
    assert "spBv1.0/STATE/scada" in node.subscriptions() and "STATE/scada" in node.subscriptions()
    assert node.on_connected() == []  # tck-id-operational-behavior-edge-node-birth-sequence-wait
    assert node.update("press", [Sample("count", 1, 1)]) == []
    assert node.on_message("spBv1.0/STATE/other", encode_state(True, 10)).publish == []  # -phid-wait-id
    assert node.on_message("spBv1.0/STATE/scada", encode_state(False, 10)).publish == []  # -phid-wait-online
    born = node.on_message("spBv1.0/STATE/scada", encode_state(True, 11)).publish
    assert [o.topic.split("/")[2] for o in born] == ["NBIRTH", "DBIRTH"]
    assert {m.name: m.value for m in decode_payload(born[1].payload).metrics}["count"] == 1
    # tck-id-operational-behavior-edge-node-termination-host-offline-timestamp: older offline ignored
    stale = node.on_message("spBv1.0/STATE/scada", encode_state(False, 5))
    assert not stale.disconnect and stale.publish == []
    # tck-id-operational-behavior-edge-node-termination-host-offline
    off = node.on_message("spBv1.0/STATE/scada", encode_state(False, 12))
    assert off.disconnect and [o.topic for o in off.publish] == ["spBv1.0/g1/NDEATH/gw1"]


def test_legacy_state_text_is_understood() -> None:
    node = make_node(primary_host_id="scada")
    node.will()
    node.on_connected()
    assert [o.topic for o in node.on_message("STATE/scada", b"ONLINE").publish] == ["spBv1.0/g1/NBIRTH/gw1"]
    assert node.on_message("STATE/scada", b"OFFLINE").disconnect


def test_unknown_metric_in_update_is_a_clear_error() -> None:
    node, _ = started()
    with pytest.raises(KeyError, match="no metric 'nope'"):
        node.update("press", [Sample("nope", 1, 1)])


def test_tck_id_payloads_propertyset_quality_value_type_and_value() -> None:
    node, _ = started()
    (out,) = node.update("press", [Sample("count", -3, 20, quality=QUALITY_BAD)])  # same value, new quality
    (m,) = raw(out).metrics
    assert list(m.properties.keys) == ["Quality"]
    assert (m.properties.values[0].type, m.properties.values[0].int_value) == (DataType.Int32, 0)
    (dbirth,) = node.add_device("press", SPECS)
    by_name = {x.name: x for x in decode_payload(dbirth.payload).metrics}
    assert by_name["count"].properties["Quality"].value == QUALITY_BAD
    (out,) = node.update("press", [Sample("count", -3, 30)])  # good again: no property
    assert len(raw(out).metrics[0].properties.keys) == 0


def test_a_value_that_does_not_fit_is_refused_and_changes_nothing() -> None:
    node, _ = started()
    with pytest.raises(PayloadError, match="alias 2: 2147483648 does not fit Int32"):
        node.update("press", [Sample("speed", 9.0, 5), Sample("count", 2**31, 5)])
    (out,) = node.update("press", [Sample("speed", 9.0, 6)])  # not recorded before: still a change
    assert raw(out).seq == 2  # the refused message took no seq number
    (dbirth,) = node.add_device("press", SPECS)
    assert {m.name: m.value for m in decode_payload(dbirth.payload).metrics}["count"] == -3


def test_retained_state_before_on_connected_counts_and_is_forgotten_on_disconnect() -> None:
    node = make_node(primary_host_id="scada")
    node.will()
    assert node.on_message("spBv1.0/STATE/scada", encode_state(True, 10)).publish == []  # not connected yet
    assert [o.topic for o in node.on_connected()] == ["spBv1.0/g1/NBIRTH/gw1"]
    node.on_disconnected()
    node.will()
    assert node.on_connected() == []  # a new session waits for a fresh STATE
