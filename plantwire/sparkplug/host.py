"""A Sparkplug B host application session, without I/O: messages in, records and publishes out.

    will = host.will()            # STATE offline, retained, QoS 1: the CONNECT's Will
    ... connect, subscribe to host.subscriptions() ...
    birth = host.birth()          # STATE online with the Will's timestamp
    result = host.on_message(topic, payload)
        result.data      DataRecords per message (result.records: as MetricRecord rows)
        result.status    node/device online/offline changes
        result.publish   Rebirth NCMDs (on a seq gap, data before birth, an unknown alias) and STATE
    out = host.command(group, edge, device, metric, value)   # a DCMD typed by the device's DBIRTH

The host tracks each edge node's bdSeq and seq. A node it has asked to rebirth is not asked again
until `rebirth_interval_ms` has passed; its data is dropped (and counted) until the NBIRTH comes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from plantwire.sparkplug.edge import BDSEQ, REBIRTH, now_ms
from plantwire.sparkplug.payload import (
    _INT_WIDTH,
    _SIGNED,
    NO_PROPERTIES,
    DataType,
    Metric,
    MetricValue,
    Payload,
    PayloadError,
    UnknownMetricError,
    _convert,
    _datatype,
    _decode_properties,
    decode_payload,
    encode_metrics,
    encode_payload,
    parse_payload,
    quality,
    unit_and_range,
)
from plantwire.sparkplug.tag_types import is_read_only
from plantwire.sparkplug.topics import (
    NAMESPACE,
    Outgoing,
    SparkplugTopic,
    StateTopic,
    TopicError,
    decode_state,
    device_topic,
    encode_state,
    node_topic,
    parse_topic,
    state_topic,
)

REBIRTH_INTERVAL_MS: Final = 5_000
MAX_NODES: Final = 4_096
MAX_DEVICES_PER_NODE: Final = 1_024
"""Bounds on what a host tracks, so invented ids cannot grow its memory without end."""


class MetricRecord(NamedTuple):
    """One value, in the shape the platform's ingest stores.

    A NamedTuple rather than a frozen dataclass: a DDATA makes one per value, and building a frozen
    dataclass of eleven fields costs more than decoding the value."""

    group_id: str
    edge_node_id: str
    device_id: str | None
    metric: str
    datatype: DataType
    unit: str | None
    value: MetricValue
    timestamp: int
    """Milliseconds since the epoch: the metric's own, else the payload's."""
    historical: bool = False
    quality: int | None = None
    """Sparkplug 'Quality' property when sent: 0 bad, 192 good, 500 stale."""


@dataclass(frozen=True, slots=True)
class StatusChange:
    group_id: str
    edge_node_id: str
    device_id: str | None
    online: bool
    timestamp: int


@dataclass(frozen=True, slots=True)
class MetricInfo:
    name: str
    datatype: DataType
    unit: str | None
    low: float | None
    high: float | None
    alias: int | None
    read_only: bool = False
    """The birth's `readOnly` property (tag_types.READ_ONLY_KEY) is true: no DCMD to it."""


_PLAIN: Final = frozenset({*_INT_WIDTH, DataType.Float, DataType.Double, DataType.Boolean, DataType.String,
                           DataType.Text, DataType.UUID})  # fmt: skip
"""Datatypes whose decoded values are ints, floats, bools or strs (or None)."""
_PLAIN_VALUES: Final = frozenset({int, float, bool, str, type(None)})


@dataclass(slots=True)
class DataRecords:
    """The values of one message (a birth's or a DATA's), all of one edge node or device, as
    columns: a DDATA carries hundreds, and the platform's ingest turns them straight into samples.
    `plain`: every value is an int, float, bool, str or None of a non-DateTime type, none has a
    quality."""

    group_id: str
    edge_node_id: str
    device_id: str | None
    metrics: list[MetricInfo] = field(default_factory=list)
    values: list[MetricValue] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    """Milliseconds since the epoch: the metric's own, else the payload's."""
    historical: list[bool] = field(default_factory=list)
    quality: list[int | None] = field(default_factory=list)
    plain: bool = True

    def add(self, info: MetricInfo, value: MetricValue, ts: int, historical: bool, q: int | None) -> None:
        self.metrics.append(info)
        self.values.append(value)
        self.timestamps.append(ts)
        self.historical.append(historical)
        self.quality.append(q)
        if q is not None or info.datatype not in _PLAIN or type(value) not in _PLAIN_VALUES:
            self.plain = False

    def records(self) -> list[MetricRecord]:
        g, e, d = self.group_id, self.edge_node_id, self.device_id
        return [
            MetricRecord(g, e, d, info.name, info.datatype, info.unit, value, ts, historical, q)
            for info, value, ts, historical, q in zip(
                self.metrics, self.values, self.timestamps, self.historical, self.quality, strict=True
            )
        ]


@dataclass(slots=True)
class HostResult:
    data: list[DataRecords] = field(default_factory=list)
    status: list[StatusChange] = field(default_factory=list)
    publish: list[Outgoing] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def records(self) -> list[MetricRecord]:
        """Every value of `data` as a `MetricRecord`."""
        return [r for chunk in self.data for r in chunk.records()]


_AS_IS: Final[dict[DataType, tuple[str, ...]]] = {
    DataType.Double: ("double_value", "float_value"),
    DataType.Float: ("float_value", "double_value"),
    DataType.Boolean: ("boolean_value",),
    DataType.String: ("string_value",),
    DataType.Text: ("string_value",),
    DataType.UUID: ("string_value",),
}
_INT_FIELDS: Final = ("int_value", "long_value")


class _Decoder(NamedTuple):
    """How a DATA value of one metric is read, worked out at its birth."""

    info: MetricInfo
    fields: tuple[str, ...]
    """Protobuf fields whose value is used as it is (ints: masked and sign-read); others: `_convert`."""
    mask: int
    sign: int
    """The sign bit of a signed integer type, 0 for every other type."""
    skip: bool
    """Node Control metrics: never records."""
    plain: bool
    """The datatype is in `_PLAIN`."""


def _decoder(info: MetricInfo) -> _Decoder:
    bits = _INT_WIDTH.get(info.datatype)
    skip = info.name.startswith("Node Control/")
    plain = info.datatype in _PLAIN
    if bits is None:
        return _Decoder(info, _AS_IS.get(info.datatype, ()), 0, 0, skip, plain)
    sign = 1 << (bits - 1) if info.datatype in _SIGNED else 0
    return _Decoder(info, _INT_FIELDS, (1 << bits) - 1, sign, skip, plain)


@dataclass(slots=True)
class _Metrics:
    by_name: dict[str, MetricInfo] = field(default_factory=dict)
    by_alias: dict[int, MetricInfo] = field(default_factory=dict)
    decoders: dict[int, _Decoder] = field(default_factory=dict)
    """By alias, for the DATA fast path."""

    def lookup(self, alias: int | None, name: str | None) -> DataType | None:
        info = self.by_alias.get(alias) if alias is not None else self.by_name.get(name or "")
        return info.datatype if info is not None else None

    def info(self, m: Metric) -> MetricInfo | None:
        return self.by_alias.get(m.alias) if m.alias is not None else self.by_name.get(m.name or "")


@dataclass(slots=True)
class _Node:
    bd_seq: int | None = None
    seq: int | None = None
    online: bool = False
    rebirth_asked: int | None = None
    metrics: _Metrics = field(default_factory=_Metrics)
    devices: dict[str, _Metrics] = field(default_factory=dict)
    devices_online: set[str] = field(default_factory=set)


@dataclass(slots=True)
class HostCounters:
    rebirths_requested: int = 0
    seq_gaps: int = 0
    dropped_messages: int = 0
    stale_ndeaths: int = 0
    bad_payloads: int = 0
    refused_nodes: int = 0
    refused_devices: int = 0


class HostApplication:
    def __init__(
        self,
        host_id: str,
        *,
        group_ids: tuple[str, ...] = (),
        clock: Callable[[], int] = now_ms,
        rebirth_interval_ms: int = REBIRTH_INTERVAL_MS,
        max_nodes: int = MAX_NODES,
        max_devices_per_node: int = MAX_DEVICES_PER_NODE,
    ) -> None:
        """`group_ids` limits the subscription to those groups; empty means every group."""
        self.host_id = host_id
        self.state_topic = state_topic(host_id)
        self.group_ids = group_ids
        self._clock = clock
        self._interval = rebirth_interval_ms
        self._connect_ts = clock()
        self._nodes: dict[tuple[str, str], _Node] = {}
        self._max_nodes = max_nodes
        self._max_devices = max_devices_per_node
        self.counters = HostCounters()

    def online_counts(self) -> tuple[int, int]:
        """(edge nodes online, their devices online). Not thread-safe: call under the session's lock."""
        nodes = [node for node in self._nodes.values() if node.online]
        return len(nodes), sum(len(node.devices_online) for node in nodes)

    # --- own STATE ------------------------------------------------------------------------------

    def will(self) -> Outgoing:
        """STATE offline with this connection's timestamp, for the CONNECT's Will."""
        self._connect_ts = self._clock()
        return Outgoing(self.state_topic, encode_state(False, self._connect_ts), 1, True)

    def birth(self) -> Outgoing:
        """STATE online, same timestamp as the Will; publish right after subscribing."""
        return Outgoing(self.state_topic, encode_state(True, self._connect_ts), 1, True)

    def death(self) -> Outgoing:
        """STATE offline to publish before an intentional DISCONNECT."""
        return Outgoing(self.state_topic, encode_state(False, self._clock()), 1, True)

    def subscriptions(self) -> list[str]:
        groups = self.group_ids or ("+",)
        return [self.state_topic, *(f"{NAMESPACE}/{g}/#" for g in groups)]

    # --- incoming -------------------------------------------------------------------------------

    def on_message(self, topic: str, payload: bytes) -> HostResult:
        result = HostResult()
        try:
            parsed = parse_topic(topic)
        except TopicError as err:
            result.errors.append(str(err))
            return result
        if isinstance(parsed, StateTopic):
            self._on_state(parsed, payload, result)
            return result
        kind = parsed.message_type
        if kind in ("NCMD", "DCMD"):
            return result  # our own (or another host's) commands
        node = self._node(parsed, result)
        if node is None:
            return result
        try:
            if kind == "NBIRTH":
                self._on_nbirth(parsed, node, payload, result)
            elif kind == "NDEATH":
                self._on_ndeath(parsed, node, payload, result)
            else:
                self._on_sequenced(parsed, node, payload, result)
        except UnknownMetricError as err:
            result.errors.append(f"{topic}: {err}")
            self._ask_rebirth(parsed, node, result, force=True)
        except PayloadError as err:
            self.counters.bad_payloads += 1
            result.errors.append(f"{topic}: {err}")
        return result

    def _node(self, t: SparkplugTopic, result: HostResult) -> _Node | None:
        key = (t.group_id, t.edge_node_id)
        node = self._nodes.get(key)
        if node is None:
            if len(self._nodes) >= self._max_nodes:  # a flood of invented edge node ids
                self.counters.refused_nodes += 1
                result.errors.append(f"edge node {key} refused: already tracking {self._max_nodes}")
                return None
            node = self._nodes[key] = _Node()
        return node

    def _on_state(self, parsed: StateTopic, payload: bytes, result: HostResult) -> None:
        if parsed.legacy or parsed.host_id != self.host_id:
            return
        try:
            state = decode_state(payload)
        except TopicError as err:
            result.errors.append(str(err))
            return
        if not state.online:  # someone (or our old Will) says we are offline: we are not
            result.publish.append(self.birth())

    def _on_nbirth(self, t: SparkplugTopic, node: _Node, payload: bytes, result: HostResult) -> None:
        decoded = decode_payload(payload)
        bd = next((m.value for m in decoded.metrics if m.name == BDSEQ), None)
        if type(bd) is not int or decoded.seq is None:
            raise PayloadError("NBIRTH without a bdSeq metric or a seq")
        ts = decoded.timestamp if decoded.timestamp is not None else self._clock()
        for device_id in sorted(node.devices_online):
            result.status.append(StatusChange(t.group_id, t.edge_node_id, device_id, False, ts))
        node.bd_seq, node.seq, node.online, node.rebirth_asked = bd, decoded.seq, True, None
        node.metrics = _Metrics()
        node.devices.clear()
        node.devices_online.clear()
        self._learn(node.metrics, decoded)
        result.status.append(StatusChange(t.group_id, t.edge_node_id, None, True, ts))
        self._records(t, decoded, node.metrics, result, skip=(BDSEQ,))

    def _on_ndeath(self, t: SparkplugTopic, node: _Node, payload: bytes, result: HostResult) -> None:
        decoded = decode_payload(payload)
        bd = next((m.value for m in decoded.metrics if m.name == BDSEQ), None)
        if not node.online or bd != node.bd_seq:
            self.counters.stale_ndeaths += 1  # an old session's Will: this session lives on
            return
        ts = self._clock()
        node.online = False
        node.seq = None
        for device_id in sorted(node.devices_online):
            result.status.append(StatusChange(t.group_id, t.edge_node_id, device_id, False, ts))
        node.devices_online.clear()
        result.status.append(StatusChange(t.group_id, t.edge_node_id, None, False, ts))

    def _on_sequenced(self, t: SparkplugTopic, node: _Node, payload: bytes, result: HostResult) -> None:
        """NDATA, DBIRTH, DDATA, DDEATH: all carry the node's next seq."""
        if t.message_type == "DDEATH" and node.online and node.seq is None:
            # Awaiting a rebirth after a gap: an offline signal is still believed (data is not).
            self._device_death(t, node, decode_payload(payload), result)
            return
        if not node.online or node.seq is None:
            self.counters.dropped_messages += 1
            self._ask_rebirth(t, node, result)
            return
        metrics = node.metrics
        if t.message_type == "DBIRTH":
            decoded = decode_payload(payload)
        elif t.device_id is None:
            if t.message_type == "NDATA":
                self._on_data(t, node, node.seq, metrics, payload, result)
                return
            decoded = decode_payload(payload, metrics.lookup)
        else:
            dev = node.devices.get(t.device_id)
            if dev is None:
                if t.message_type == "DDEATH":
                    return
                self.counters.dropped_messages += 1
                self._ask_rebirth(t, node, result, force=True)
                return
            if t.message_type == "DDATA":
                self._on_data(t, node, node.seq, dev, payload, result)
                return
            metrics = dev
            decoded = decode_payload(payload, dev.lookup)
        if decoded.seq is None or decoded.seq != (node.seq + 1) % 256:
            self.counters.seq_gaps += 1
            self.counters.dropped_messages += 1
            result.errors.append(f"{t.message_type} seq {decoded.seq}, expected {(node.seq + 1) % 256}")
            self._ask_rebirth(t, node, result, force=True)
            return
        node.seq = decoded.seq
        ts = decoded.timestamp if decoded.timestamp is not None else self._clock()
        device_id = t.device_id or ""
        if t.message_type == "DBIRTH":
            if device_id not in node.devices and len(node.devices) >= self._max_devices:
                self.counters.refused_devices += 1
                result.errors.append(f"device {device_id!r} refused: node has {self._max_devices} already")
                return
            metrics = node.devices[device_id] = _Metrics()
            self._learn(metrics, decoded)
            node.devices_online.add(device_id)
            result.status.append(StatusChange(t.group_id, t.edge_node_id, device_id, True, ts))
        elif t.message_type == "DDEATH":
            self._device_death(t, node, decoded, result)
            return
        self._records(t, decoded, metrics, result)

    def _on_data(
        self, t: SparkplugTopic, node: _Node, last: int, metrics: _Metrics, payload: bytes, result: HostResult
    ) -> None:
        """NDATA/DDATA: every value decoded (or the message refused) before its seq is believed."""
        msg = parse_payload(payload)
        ts = msg.timestamp if msg.HasField("timestamp") else self._clock()
        values = _data_values(DataRecords(t.group_id, t.edge_node_id, t.device_id), msg, metrics, ts)
        seq = msg.seq if msg.HasField("seq") else None
        if seq is None or seq != (last + 1) % 256:
            self.counters.seq_gaps += 1
            self.counters.dropped_messages += 1
            result.errors.append(f"{t.message_type} seq {seq}, expected {(last + 1) % 256}")
            self._ask_rebirth(t, node, result, force=True)
            return
        node.seq = seq
        result.data.append(values)

    def _device_death(self, t: SparkplugTopic, node: _Node, decoded: Payload, result: HostResult) -> None:
        device_id = t.device_id or ""
        if device_id not in node.devices_online:
            return
        ts = decoded.timestamp if decoded.timestamp is not None else self._clock()
        node.devices_online.discard(device_id)
        result.status.append(StatusChange(t.group_id, t.edge_node_id, device_id, False, ts))

    # --- helpers --------------------------------------------------------------------------------

    def _learn(self, metrics: _Metrics, decoded: Payload) -> None:
        for m in decoded.metrics:
            if m.name is None or m.datatype is None:
                raise PayloadError("a birth metric lacks its name or datatype")
            unit, low, high = unit_and_range(m.properties)
            info = MetricInfo(m.name, m.datatype, unit, low, high, m.alias, is_read_only(m.properties))
            metrics.by_name[m.name] = info
            if m.alias is not None:
                metrics.by_alias[m.alias] = info
                metrics.decoders[m.alias] = _decoder(info)

    def _records(
        self,
        t: SparkplugTopic,
        decoded: Payload,
        metrics: _Metrics,
        result: HostResult,
        skip: tuple[str, ...] = (),
    ) -> None:
        ts = decoded.timestamp if decoded.timestamp is not None else self._clock()
        values = DataRecords(t.group_id, t.edge_node_id, t.device_id)
        for m in decoded.metrics:
            info = metrics.info(m)
            if info is None:
                raise UnknownMetricError(m.alias, m.name)
            if info.name in skip or info.name.startswith("Node Control/"):
                continue
            stamp = m.timestamp if m.timestamp is not None else ts
            values.add(info, m.value, stamp, m.is_historical, quality(m.properties))
        result.data.append(values)

    def _ask_rebirth(self, t: SparkplugTopic, node: _Node, result: HostResult, force: bool = False) -> None:
        now = self._clock()
        if force:
            node.seq = None  # data is not trusted again before the NBIRTH
        if node.rebirth_asked is not None and now - node.rebirth_asked < self._interval:
            return
        node.rebirth_asked = now
        self.counters.rebirths_requested += 1
        result.publish.append(rebirth_request(t.group_id, t.edge_node_id, now))

    def node_online(self, group_id: str, edge_node_id: str) -> bool:
        node = self._nodes.get((group_id, edge_node_id))
        return node is not None and node.online

    def device_online(self, group_id: str, edge_node_id: str, device_id: str) -> bool:
        """Whether the device has a DBIRTH in the node's current session and no DDEATH since."""
        node = self._nodes.get((group_id, edge_node_id))
        return node is not None and node.online and device_id in node.devices_online

    def request_rebirth(self, group_id: str, edge_node_id: str) -> Outgoing | None:
        """A Rebirth NCMD for a node whose births this session lacks, at most once per
        `rebirth_interval_ms` per node (None: asked recently, or a node beyond `max_nodes`)."""
        node = self._nodes.get((group_id, edge_node_id))
        if node is None:
            if len(self._nodes) >= self._max_nodes:
                return None
            node = self._nodes[(group_id, edge_node_id)] = _Node()
        now = self._clock()
        if node.rebirth_asked is not None and now - node.rebirth_asked < self._interval:
            return None
        node.rebirth_asked = now
        self.counters.rebirths_requested += 1
        return rebirth_request(group_id, edge_node_id, now)

    def metric_info(self, group_id: str, edge_node_id: str, device_id: str | None) -> dict[str, MetricInfo]:
        node = self._nodes.get((group_id, edge_node_id))
        if node is None:
            return {}
        metrics = node.metrics if device_id is None else node.devices.get(device_id)
        return dict(metrics.by_name) if metrics is not None else {}

    # --- commands -------------------------------------------------------------------------------

    def command(
        self, group_id: str, edge_node_id: str, device_id: str, metric: str, value: MetricValue
    ) -> Outgoing:
        """A DCMD writing `value` to a device metric, aliased (else named) as its DBIRTH said.

        The metric carries the birth's datatype although the specification says a DCMD SHOULD NOT
        (tck-id-payloads-metric-datatype-not-req): edge nodes that decode a command without their
        own birth at hand (pysparkplug 0.6.1's) cannot read its value otherwise.
        """
        info = self.metric_info(group_id, edge_node_id, device_id).get(metric)
        if info is None:
            raise KeyError(f"{group_id}/{edge_node_id}/{device_id} has no metric {metric!r} in its DBIRTH")
        now = self._clock()
        if info.alias is not None:
            m = Metric(None, info.datatype, value, alias=info.alias, timestamp=now)
        else:
            m = Metric(metric, info.datatype, value, timestamp=now)
        data = encode_metrics(now, None, [m], [info.datatype])
        return Outgoing(device_topic(group_id, "DCMD", edge_node_id, device_id), data, 0, False)


def _data_values(out: DataRecords, msg: Any, metrics: _Metrics, ts: int) -> DataRecords:
    """The values of a DATA payload, straight from its protobuf metrics (the same checks as
    `decode_payload` with the birth's datatypes, without building a `Metric` per value)."""
    decoders = metrics.decoders
    infos, values, stamps, hist, quals = out.metrics, out.values, out.timestamps, out.historical, out.quality
    plain = True
    for m in msg.metrics:
        alias = m.alias
        d = decoders.get(alias)
        # By name, unknown, or with a datatype of its own: the general path. (A datatype field of 0,
        # Unknown, reads as none sent: the birth's datatype decodes the value.)
        if d is None or m.datatype or (alias == 0 and not m.HasField("alias")):
            found = _general_value(m, metrics, ts)
            if found is not None:
                out.add(*found)
                plain = plain and out.plain
            continue
        if m.is_null:
            value: MetricValue = None
        else:
            # The usual field read directly: a value other than 0/0.0/False/"" proves it is the
            # one set (the value is a oneof); otherwise ask which field holds the value.
            raw: Any = getattr(m, d.fields[0]) if d.fields else None
            if not raw:
                which = m.WhichOneof("value")
                if which not in d.fields:
                    value = _value(d.info.datatype, which, m, alias)
                    raw = None
                else:
                    raw = getattr(m, which)
            if raw is not None:
                if d.mask:
                    raw &= d.mask
                    if raw & d.sign:
                        raw -= d.mask + 1
                value = raw
        q = quality(_properties(m, alias)) if m.HasField("properties") else None
        stamp = m.timestamp
        if not stamp and not m.HasField("timestamp"):
            stamp = ts
        if not d.skip:
            infos.append(d.info)
            values.append(value)
            stamps.append(stamp)
            hist.append(m.is_historical)
            quals.append(q)
            if q is not None or not d.plain:
                plain = False
    out.plain = plain
    return out


def _value(datatype: DataType, which: str | None, m: Any, where: object) -> MetricValue:
    try:
        if which is None:
            raise PayloadError(f"{datatype.name} metric has neither a value nor is_null")
        return _convert(datatype, which, getattr(m, which))
    except PayloadError as err:
        raise PayloadError(f"metric {where!r}: {err}") from err


def _properties(m: Any, where: object) -> Any:
    try:
        return _decode_properties(m.properties)
    except PayloadError as err:
        raise PayloadError(f"metric {where!r}: {err}") from err


def _general_value(
    m: Any, metrics: _Metrics, ts: int
) -> tuple[MetricInfo, MetricValue, int, bool, int | None] | None:
    """A DATA metric sent by name, or with a datatype, or unknown (UnknownMetricError)."""
    name: str | None = m.name if m.HasField("name") else None
    alias: int | None = m.alias if m.HasField("alias") else None
    where = name if name is not None else alias
    info = metrics.by_alias.get(alias) if alias is not None else metrics.by_name.get(name or "")
    if m.HasField("datatype"):
        datatype = _datatype(m.datatype, f"metric {where!r}")
    elif info is not None:
        datatype = info.datatype
    else:
        raise UnknownMetricError(alias, name)
    value = None if m.is_null else _value(datatype, m.WhichOneof("value"), m, where)
    props = _properties(m, where) if m.HasField("properties") else NO_PROPERTIES
    if info is None:
        raise UnknownMetricError(alias, name)
    if info.name.startswith("Node Control/"):
        return None
    return info, value, m.timestamp if m.HasField("timestamp") else ts, m.is_historical, quality(props)


def rebirth_request(group_id: str, edge_node_id: str, timestamp: int) -> Outgoing:
    """NCMD `Node Control/Rebirth` = true (QoS 0, not retained, no seq)."""
    m = Metric(REBIRTH, DataType.Boolean, True, timestamp=timestamp)
    data = encode_payload(Payload(timestamp, None, [m]))
    return Outgoing(node_topic(group_id, "NCMD", edge_node_id), data, 0, False)
