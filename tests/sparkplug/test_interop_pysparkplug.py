"""Interop with pysparkplug 0.6.1, code nobody here wrote, through a real Mosquitto.

(a) Our EdgeNode's messages decoded by pysparkplug's Client, field by field.
(b) A pysparkplug EdgeNode's messages decoded by our HostApplication into records; a seq gap
    we inject makes our host send the rebirth NCMD, which pysparkplug's edge node receives.
"""

from __future__ import annotations

import queue
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from sparkplug_link import WAIT, Link, Peer

from plantwire.sparkplug.edge import REBIRTH, EdgeNode, MetricSpec, Sample
from plantwire.sparkplug.host import HostApplication, HostResult
from plantwire.sparkplug.payload import DataType, engineering_properties
from plantwire.sparkplug.topics import Outgoing

T = DataType
VALUES: dict[str, tuple[DataType, Any]] = {
    "i8": (T.Int8, -5),
    "i16": (T.Int16, -30000),
    "i32": (T.Int32, -1),
    "i64": (T.Int64, -(2**63)),
    "u8": (T.UInt8, 255),
    "u16": (T.UInt16, 65535),
    "u32": (T.UInt32, 4_000_000_000),
    "u64": (T.UInt64, 2**64 - 1),
    "f32": (T.Float, 1.5),
    "f64": (T.Double, -2.25),
    "flag": (T.Boolean, True),
    "name": (T.String, "héllo"),
    "note": (T.Text, "long text"),
    "id": (T.UUID, "0b5c3f8e-2c1a-4a57-9d5e-2f1b8a6c7d90"),
    "when": (T.DateTime, 1_700_000_000_123),
    "blob": (T.Bytes, b"\x00\xffab"),
    "a_i8": (T.Int8Array, (-23, 123)),
    "a_i16": (T.Int16Array, (-30000, 30000)),
    "a_i32": (T.Int32Array, (-1, 315338746)),
    "a_i64": (T.Int64Array, (-4270929666821191986, 5)),
    "a_u8": (T.UInt8Array, (23, 250)),
    "a_u16": (T.UInt16Array, (30, 52360)),
    "a_u32": (T.UInt32Array, (52, 3293969225)),
    "a_u64": (T.UInt64Array, (52, 16444743074749521625)),
    "a_f32": (T.FloatArray, (1.25, -89.5)),
    "a_f64": (T.DoubleArray, (12.354213, 1022.9123213)),
    "a_bool": (
        T.BooleanArray,
        (False, False, True, True, False, True, False, False, True, True, False, True),
    ),
    "a_str": (T.StringArray, ("ABC", "hello", "")),
    "a_when": (T.DateTimeArray, (1256102875335, 1656107875000)),
    "missing": (T.Double, None),
}


def expected_json(datatype: DataType, value: Any) -> Any:
    """How listen.py prints pysparkplug's decoded value."""
    if datatype is T.DateTime:
        return {"datetime_ms": value}
    if datatype is T.DateTimeArray:
        return [{"datetime_ms": v} for v in value]
    if datatype is T.Bytes:
        return {"hex": value.hex()}
    if isinstance(value, tuple):
        return list(value)
    return value


def test_tck_id_payloads_our_edge_node_messages_decode_in_pysparkplug(
    broker_port: int, start_peer: Callable[..., Peer]
) -> None:
    group = "g" + uuid.uuid4().hex[:8]
    listener = start_peer("listen.py", "127.0.0.1", str(broker_port), group)
    listener.next("ready")
    node = EdgeNode(group, "gw1")
    will = node.will()
    specs = [
        MetricSpec(n, t, engineering_properties("rpm", -10, 10) if n == "f64" else {})
        for n, (t, _) in VALUES.items()
    ]
    node.add_device("press", specs, [Sample(n, v, 1_700_000_000_000) for n, (_, v) in VALUES.items()])
    link = Link(broker_port, "edge-" + group, lambda t, p: [], will=will)
    link.start(node.subscriptions())
    try:
        link.publish(node.on_connected())
        link.publish(
            node.update(
                "press",
                [
                    Sample("i8", -128, 1_700_000_000_500, historical=True),
                    Sample("i64", -7, 1_700_000_000_501),
                ],
            )
        )
        link.publish(node.device_lost("press"))
        link.publish(node.shutdown())
        msgs = [listener.next("message") for _ in range(5)]
    finally:
        link.stop()

    assert [m["type"] for m in msgs] == ["NBIRTH", "DBIRTH", "DDATA", "DDEATH", "NDEATH"]
    nbirth, dbirth, ddata, ddeath, ndeath = msgs
    # tck-id-topics-nbirth-seq-num, -bdseq-included, -rebirth-metric; seq gap-free across messages
    assert [m["seq"] for m in msgs[:4]] == [0, 1, 2, 3] and ndeath["seq"] is None
    assert all(m["timestamp"] for m in msgs[:4]) and all(m["pb_timestamp"] for m in msgs)
    assert [(m["qos"], m["retain"]) for m in msgs] == [(0, False)] * 4 + [(1, False)]
    nb = {m["name"]: m for m in nbirth["metrics"]}
    assert (nb["bdSeq"]["datatype"], nb["bdSeq"]["value"]) == ("INT64", 0)
    assert (nb[REBIRTH]["datatype"], nb[REBIRTH]["value"], nb[REBIRTH]["alias"]) == ("BOOLEAN", False, None)
    assert [(m["name"], m["value"]) for m in ndeath["metrics"]] == [("bdSeq", 0)]
    # tck-id-topics-dbirth-metrics: name, alias, datatype and value of every metric
    db = {m["name"]: m for m in dbirth["metrics"]}
    assert set(db) == set(VALUES)
    for name, (datatype, value) in VALUES.items():
        got = db[name]
        assert got["datatype"] == datatype.name.upper().replace("ARRAY", "_ARRAY"), name
        assert got["value"] == expected_json(datatype, value), name
        assert got["is_null"] is (value is None), name
        assert isinstance(got["alias"], int), name
    assert len({m["alias"] for m in dbirth["metrics"]}) == len(VALUES)
    assert db["f64"]["properties"] == {
        "engUnit": {"type": T.String, "value": "rpm"},
        "engLow": {"type": T.Double, "value": -10.0},
        "engHigh": {"type": T.Double, "value": 10.0},
    }
    # tck-id-payloads-alias-data-cmd-requirement: pysparkplug resolves our aliases via the DBIRTH
    dd = ddata["metrics"]
    assert [(m["name"], m["value"], m["is_historical"]) for m in dd] == [
        ("i8", -128, True),
        ("i64", -7, False),
    ]
    assert [m["alias"] for m in dd] == [db["i8"]["alias"], db["i64"]["alias"]]
    assert ddeath["topic"] == f"spBv1.0/{group}/DDEATH/gw1/press"


class HostSide:
    """Our HostApplication on a real paho client; results collected in a queue."""

    def __init__(self, port: int, host_id: str, group: str) -> None:
        self.host = HostApplication(host_id, group_ids=(group,))
        self.results: queue.Queue[HostResult] = queue.Queue()
        self.link = Link(port, host_id, self._handle, will=self.host.will())
        self.link.start(self.host.subscriptions())
        self.link.publish([self.host.birth()])

    def _handle(self, topic: str, payload: bytes) -> list[Outgoing]:
        result = self.host.on_message(topic, payload)
        self.results.put(result)
        return result.publish

    def until(self, check: Callable[[HostResult], bool], what: str) -> HostResult:
        while True:
            try:
                result = self.results.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"our host saw no {what} within {WAIT}s") from None
            if check(result):
                return result


def test_tck_id_operational_behavior_host_reordering_rebirth_pysparkplug_edge_node(
    broker_port: int, start_peer: Callable[..., Peer]
) -> None:
    group = "g" + uuid.uuid4().hex[:8]
    side = HostSide(broker_port, "host-" + group, group)
    edge = start_peer("edge.py", "127.0.0.1", str(broker_port), group, "pyedge", "dev1")
    try:
        edge.next("ready")
        edge.send("connect")
        # NBIRTH then DBIRTH (pysparkplug registers the device before connecting)
        born = side.until(lambda r: any(s.device_id == "dev1" and s.online for s in r.status), "DBIRTH")
        records = {r.metric: r for r in born.records}
        assert records["temp"].value == -40 and records["temp"].datatype is DataType.Int16
        assert records["speed"].value == 1.5 and records["label"].value == "a"
        assert records["bits"].value == (True, False, True)
        assert side.host.node_online(group, "pyedge")

        edge.send("update")  # DDATA
        data = side.until(lambda r: bool(r.records), "DDATA")
        assert [(r.device_id, r.metric, r.value) for r in data.records] == [("dev1", "temp", -41)]

        edge.send("gap")  # skips a seq number, then DDATA
        gap = side.until(lambda r: bool(r.publish), "rebirth request")
        assert gap.records == [] and side.host.counters.seq_gaps == 1
        ncmd = edge.next("ncmd")
        assert ncmd["topic"] == f"spBv1.0/{group}/NCMD/pyedge"
        assert ncmd["metrics"] == [{"name": REBIRTH, "datatype": "BOOLEAN", "value": True}]

        edge.send("ddeath")
        lost = side.until(lambda r: bool(r.status), "DDEATH")
        assert [(s.device_id, s.online) for s in lost.status] == [("dev1", False)]

        edge.kill()  # the broker publishes the Will: NDEATH with the bdSeq of the NBIRTH
        dead = side.until(lambda r: bool(r.status), "NDEATH")
        assert [(s.device_id, s.online) for s in dead.status] == [(None, False)]
        assert not side.host.node_online(group, "pyedge")
    finally:
        side.link.stop()


def test_pysparkplug_clean_disconnect_ndeath_carries_the_next_bdseq_and_is_ignored(
    broker_port: int, start_peer: Callable[..., Peer]
) -> None:
    """pysparkplug 0.6.1 re-arms its Will after the NBIRTH, so the NDEATH it publishes on a clean
    disconnect carries bdSeq + 1. The spec (tck-id-payloads-ndeath-bdseq) says only a matching bdSeq
    ends the session; our host ignores that NDEATH and counts it as stale."""
    group = "g" + uuid.uuid4().hex[:8]
    side = HostSide(broker_port, "host-" + group, group)
    edge = start_peer("edge.py", "127.0.0.1", str(broker_port), group, "pyedge", "dev1")
    try:
        edge.next("ready")
        edge.send("connect")
        side.until(lambda r: any(s.device_id == "dev1" for s in r.status), "DBIRTH")
        edge.send("disconnect")
        edge.next("disconnected")
        while side.host.counters.stale_ndeaths == 0:
            result = side.until(lambda r: True, "NDEATH")
            assert result.status == []
        assert side.host.node_online(group, "pyedge")
    finally:
        side.link.stop()


def test_state_birth_is_retained_json_that_pysparkplug_reads(
    broker_port: int, start_peer: Callable[..., Peer]
) -> None:
    """tck-id-host-topic-phid-birth-payload: pysparkplug's State decoder reads our STATE birth."""
    group = "g" + uuid.uuid4().hex[:8]
    side = HostSide(broker_port, "host-" + group, group)
    try:
        edge = start_peer("edge.py", "127.0.0.1", str(broker_port), group, "pyedge", "dev1", "host-" + group)
        state = edge.next("state")
        assert (
            state["online"] is True
            and state["timestamp"] == orjson.loads(side.host.birth().payload)["timestamp"]
        )
    finally:
        side.link.stop()


def test_tck_id_operational_behavior_data_commands_dcmd_from_pysparkplug_becomes_a_write(
    broker_port: int, start_peer: Callable[..., Peer]
) -> None:
    """pysparkplug sends DCMD metrics by name without a datatype; our edge node types them by its DBIRTH."""
    group = "g" + uuid.uuid4().hex[:8]
    node = EdgeNode(group, "gw1")
    will = node.will()
    node.add_device("press", [MetricSpec("count", DataType.Int32)], [Sample("count", 1, 1)])
    writes: queue.Queue[Any] = queue.Queue()

    def handle(topic: str, payload: bytes) -> list[Outgoing]:
        actions = node.on_message(topic, payload)
        for w in actions.writes:
            writes.put(w)
        return actions.publish

    link = Link(broker_port, "edge-" + group, handle, will=will)
    link.start(node.subscriptions())
    try:
        link.publish(node.on_connected())
        peer = start_peer("edge.py", "127.0.0.1", str(broker_port), group, "pyedge", "dev1")
        peer.next("ready")
        peer.send("connect")
        peer.next("connect")
        peer.send(f"dcmd {group} gw1 press")
        peer.next("dcmd")
        write = writes.get(timeout=WAIT)
        assert (write.device_id, write.metric, write.datatype, write.value) == (
            "press",
            "count",
            DataType.Int32,
            -9,
        )
    finally:
        link.stop()
