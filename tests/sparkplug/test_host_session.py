"""The host application session, fed by our own edge node session and by hand-made payloads."""

from __future__ import annotations

import itertools

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwire.sparkplug.edge import REBIRTH, EdgeNode, MetricSpec, Sample
from plantwire.sparkplug.host import HostApplication, MetricRecord, StatusChange, rebirth_request
from plantwire.sparkplug.payload import (
    DataType,
    Metric,
    Payload,
    decode_payload,
    encode_metrics,
    encode_payload,
    engineering_properties,
)
from plantwire.sparkplug.tag_types import READ_ONLY_KEY, read_only_property
from plantwire.sparkplug.topics import Outgoing, encode_state

SPECS = [
    MetricSpec("speed", DataType.Double, engineering_properties("rpm", 0, 100)),
    MetricSpec("count", DataType.Int8),
]


def clock() -> itertools.count[int]:
    return itertools.count(1_700_000_000_000, 10)


def pair(interval: int = 5_000) -> tuple[EdgeNode, HostApplication, list[Outgoing]]:
    c = clock()
    node = EdgeNode("g1", "gw1", clock=lambda: next(c))
    host = HostApplication("plantwire", clock=lambda: next(c), rebirth_interval_ms=interval)
    node.will()
    node.add_device("press", SPECS, [Sample("speed", 5.0, 1), Sample("count", -1, 1)])
    return node, host, node.on_connected()


def feed(
    host: HostApplication, outs: list[Outgoing]
) -> tuple[list[MetricRecord], list[StatusChange], list[Outgoing]]:
    records, status, publish = [], [], []
    for o in outs:
        r = host.on_message(o.topic, o.payload)
        records += r.records
        status += r.status
        publish += r.publish
    return records, status, publish


def test_tck_id_host_topic_phid_birth_and_will_state_json() -> None:
    host = HostApplication("plantwire")
    will, birth = host.will(), host.birth()
    assert will.topic == birth.topic == "spBv1.0/STATE/plantwire"
    assert (will.qos, will.retain, birth.qos, birth.retain) == (1, True, 1, True)
    w, b = orjson.loads(will.payload), orjson.loads(birth.payload)
    assert w["online"] is False and b["online"] is True
    assert w["timestamp"] == b["timestamp"]  # tck-id-host-topic-phid-birth-payload-timestamp
    assert host.subscriptions()[0] == "spBv1.0/STATE/plantwire"
    assert orjson.loads(host.death().payload)["online"] is False


def test_tck_id_message_flow_hid_sparkplug_state_message_delivered_republishes_birth() -> None:
    host = HostApplication("plantwire")
    host.will()
    r = host.on_message("spBv1.0/STATE/plantwire", encode_state(False, 1))
    assert [orjson.loads(o.payload)["online"] for o in r.publish] == [True]
    assert host.on_message("spBv1.0/STATE/plantwire", encode_state(True, 1)).publish == []


def test_births_and_data_become_records_with_units_and_types() -> None:
    node, host, births = pair()
    records, status, publish = feed(host, births)
    assert publish == []
    assert [(s.device_id, s.online) for s in status] == [(None, True), ("press", True)]
    assert {(r.device_id, r.metric, r.datatype, r.unit, r.value, r.timestamp) for r in records} == {
        ("press", "speed", DataType.Double, "rpm", 5.0, 1),
        ("press", "count", DataType.Int8, None, -1, 1),
    }
    records, _, _ = feed(host, node.update("press", [Sample("count", -128, 50), Sample("speed", 7.5, 50)]))
    assert [(r.metric, r.value, r.unit) for r in records] == [("count", -128, None), ("speed", 7.5, "rpm")]
    assert host.metric_info("g1", "gw1", "press")["speed"].high == 100.0
    records, _, _ = feed(host, node.update("press", [Sample("count", 3, 60, historical=True)]))
    assert records[0].historical


def test_tck_id_operational_behavior_host_reordering_rebirth_on_seq_gap() -> None:
    node, host, births = pair()
    feed(host, births)
    node.update("press", [Sample("count", 1, 2)])  # lost on the way
    records, _, publish = feed(host, node.update("press", [Sample("count", 2, 3)]))
    assert records == [] and host.counters.seq_gaps == 1
    (ncmd,) = publish
    assert ncmd.topic == "spBv1.0/g1/NCMD/gw1" and (ncmd.qos, ncmd.retain) == (0, False)
    p = decode_payload(ncmd.payload)
    assert p.seq is None and p.timestamp is not None  # tck-id-payloads-ncmd-seq / -timestamp
    assert [(m.name, m.datatype, m.value) for m in p.metrics] == [(REBIRTH, DataType.Boolean, True)]
    # Until the rebirth, data is dropped and the request is not repeated within the interval.
    records, _, publish = feed(host, node.update("press", [Sample("count", 3, 4)]))
    assert records == [] and publish == []
    actions = node.on_message(ncmd.topic, ncmd.payload)
    records, _status, publish = feed(host, actions.publish)
    assert publish == [] and {r.metric: r.value for r in records} == {"speed": 5.0, "count": 3}
    records, _, _ = feed(host, node.update("press", [Sample("count", 4, 5)]))
    assert [r.value for r in records] == [4]


def test_data_before_birth_asks_for_a_rebirth() -> None:
    node, host, _births = pair()
    _, _, publish = feed(host, node.update("press", [Sample("count", 1, 2)]))
    assert [o.topic for o in publish] == ["spBv1.0/g1/NCMD/gw1"]


def test_unknown_alias_asks_for_a_rebirth() -> None:
    _, host, births = pair()
    feed(host, births)
    bogus = Metric(None, None, 1, alias=77)
    r = host.on_message("spBv1.0/g1/DDATA/gw1/press", encode_metrics(1, 2, [bogus], [DataType.Int8]))
    assert r.records == [] and [o.topic for o in r.publish] == ["spBv1.0/g1/NCMD/gw1"]
    assert "77" in r.errors[0]


def test_tck_id_operational_behavior_edge_node_termination_host_action_ndeath_matching_bdseq_only() -> None:
    node, host, births = pair()
    feed(host, births)
    old_will = EdgeNode("g1", "gw1", bd_seq=7).will()  # an old session's Will arriving late
    assert host.on_message(old_will.topic, old_will.payload).status == []
    assert host.node_online("g1", "gw1") and host.counters.stale_ndeaths == 1
    (ndeath,) = node.shutdown()
    _, status, _ = feed(host, [ndeath])
    assert [(s.device_id, s.online) for s in status] == [("press", False), (None, False)]
    assert not host.node_online("g1", "gw1")


def test_tck_id_operational_behavior_edge_node_termination_host_action_ddeath_devices_offline() -> None:
    node, host, births = pair()
    feed(host, births)
    _, status, publish = feed(host, node.device_lost("press"))
    assert publish == [] and [(s.device_id, s.online) for s in status] == [("press", False)]


def test_command_encoder_writes_a_dcmd_with_the_births_alias_and_type() -> None:
    node, host, births = pair()
    feed(host, births)
    dcmd = host.command("g1", "gw1", "press", "count", -7)
    assert dcmd.topic == "spBv1.0/g1/DCMD/gw1/press" and (dcmd.qos, dcmd.retain) == (0, False)
    actions = node.on_message(dcmd.topic, dcmd.payload)
    assert [(w.metric, w.value) for w in actions.writes] == [("count", -7)]
    p = decode_payload(dcmd.payload, lambda a, n: DataType.Int8)
    assert p.seq is None and p.metrics[0].name is None  # tck-id-payloads-dcmd-seq, alias only


def test_bad_payload_is_counted_and_reported_not_raised() -> None:
    _, host, _births = pair()
    r = host.on_message("spBv1.0/g1/NBIRTH/gw1", b"\xff\xff")
    assert r.errors and host.counters.bad_payloads == 1
    r = host.on_message("spBv1.0/g1/NBIRTH/gw1", encode_payload(Payload(1, 0, [])))
    assert "bdSeq" in r.errors[0]
    assert host.on_message("not/sparkplug", b"").errors


def test_ddeath_is_believed_while_a_rebirth_is_pending_and_quality_reaches_records() -> None:
    node, host, births = pair()
    feed(host, births)
    records, _, _ = feed(host, node.update("press", [Sample("count", 9, 2, quality=0)]))
    assert [(r.value, r.quality) for r in records] == [(9, 0)]
    node.update("press", [Sample("count", 1, 3)])  # lost: the next message makes a gap
    _, _, publish = feed(host, node.update("press", [Sample("count", 2, 4)]))
    assert publish
    _, status, _ = feed(host, node.device_lost("press"))
    assert [(s.device_id, s.online) for s in status] == [("press", False)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-128, 127), st.booleans()), min_size=1, max_size=300))
def test_lost_messages_never_yield_wrong_values_and_rebirth_heals(steps: list[tuple[int, bool]]) -> None:
    """Random DDATA losses, across the seq wrap-around: the host stores only (timestamp, value)
    pairs the node really sent, asks for a rebirth after each loss, and a final rebirth brings it
    the node's current value."""
    node, host, births = pair(interval=0)
    feed(host, births)
    stored: list[tuple[int, object]] = []

    def deliver(outs: list[Outgoing]) -> None:
        while outs:
            records, _, publish = feed(host, outs)
            stored.extend((r.timestamp, r.value) for r in records if r.metric == "count")
            outs = [o for ncmd in publish for o in node.on_message(ncmd.topic, ncmd.payload).publish]

    missing = gaps = 0
    for i, (value, lost) in enumerate(steps):
        outs = node.update("press", [Sample("count", value, 1000 + i)])
        if lost:
            missing += bool(outs)
        elif outs:
            gaps += bool(missing)
            missing = 0
            deliver(outs)
    sent = {(1000 + i, v) for i, (v, _) in enumerate(steps)} | {(1, -1)}
    assert set(stored) <= sent
    assert host.counters.seq_gaps == host.counters.rebirths_requested == gaps
    ncmd = rebirth_request("g1", "gw1", 1)
    deliver(node.on_message(ncmd.topic, ncmd.payload).publish)
    assert stored[-1][1] == steps[-1][0]


def test_invented_ids_cannot_grow_the_host_without_end() -> None:
    host = HostApplication("plantwire", max_nodes=2, max_devices_per_node=1)
    for i in range(5):
        host.on_message(f"spBv1.0/g/NDATA/e{i}", encode_payload(Payload(1, 1, [])))
    assert host.counters.refused_nodes == 3
    c = clock()
    node = EdgeNode("g1", "gw1", clock=lambda: next(c))
    host = HostApplication("plantwire", max_devices_per_node=1)
    node.will()
    node.add_device("a", SPECS)
    node.add_device("b", SPECS)
    _, status, _ = feed(host, node.on_connected())
    assert [(s.device_id, s.online) for s in status] == [(None, True), ("a", True)]
    assert host.counters.refused_devices == 1


def test_dcmd_carries_the_births_datatype_and_read_only_metrics_are_known() -> None:
    c = clock()
    node = EdgeNode("g1", "gw1", clock=lambda: next(c))
    host = HostApplication("plantwire", clock=lambda: next(c))
    node.will()
    specs = [*SPECS, MetricSpec("limit", DataType.Float, {READ_ONLY_KEY: read_only_property()})]
    node.add_device("press", specs, [Sample("speed", 5.0, 1)])
    feed(host, node.on_connected())
    info = host.metric_info("g1", "gw1", "press")
    assert (info["limit"].read_only, info["speed"].read_only) == (True, False)
    assert host.device_online("g1", "gw1", "press") and not host.device_online("g1", "gw1", "other")
    dcmd = host.command("g1", "gw1", "press", "speed", 42.5)
    m = decode_payload(dcmd.payload).metrics[0]  # no lookup needed: the datatype is on the wire
    assert (m.name, m.alias, m.datatype, m.value) == (None, info["speed"].alias, DataType.Double, 42.5)
    assert [(w.metric, w.value) for w in node.on_message(dcmd.topic, dcmd.payload).writes] == [
        ("speed", 42.5)
    ]
    feed(host, node.device_lost("press"))
    assert not host.device_online("g1", "gw1", "press")


def test_rebirth_request_for_a_node_without_births_is_rate_limited() -> None:
    now = [1_000]
    host = HostApplication("plantwire", clock=lambda: now[0], rebirth_interval_ms=5_000, max_nodes=1)
    first = host.request_rebirth("g1", "gw9")
    assert first is not None and first.topic == "spBv1.0/g1/NCMD/gw9"
    assert decode_payload(first.payload).metrics[0].name == REBIRTH
    assert host.request_rebirth("g1", "gw9") is None  # asked 0 ms ago
    now[0] += 5_000
    assert host.request_rebirth("g1", "gw9") is not None
    assert host.request_rebirth("g1", "other") is None  # beyond max_nodes: not tracked, not asked
    assert host.counters.rebirths_requested == 2
