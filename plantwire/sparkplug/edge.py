"""A Sparkplug B edge node session, without I/O: it says what to publish; its owner publishes.

Use, per MQTT connection:

    will = node.will()                  # NDEATH with this connection's bdSeq: the CONNECT's Will
    ... connect with `will`, subscribe to node.subscriptions() ...
    out = node.on_connected()           # NBIRTH + DBIRTHs, or nothing while waiting for the host
    out = node.update("press", [...])   # DDATA by exception, aliases only
    enc = node.encode_samples("press", samples)       # or: the metrics now, the DDATA later
    out = node.ddata_of_row("press", enc.data, epoch)  # (the gateway's outbox rows: metric_bytes)
    actions = node.on_message(topic, payload)   # STATE, NCMD (rebirth), DCMD (writes)
    out = node.shutdown()               # NDEATH to publish before a clean DISCONNECT

`seq` runs 0..255 and wraps, gap-free over every message of the node; NBIRTH is seq 0. bdSeq
grows by one per connection (0..255) and stays the same for a rebirth on the same connection.

Aliases: a metric (name and datatype) keeps its alias for as long as the node's `aliases_state()`
is kept (the gateway keeps it across restarts), so metrics encoded before a rebirth or a restart
still mean the same metric. A datatype change gets a new alias. A device's `epoch` grows when a
birth leaves out an alias its previous birth had: metrics encoded before that are checked against
the current birth when they are published (`ddata_of_row`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from plantwire import wire
from plantwire.sparkplug import sparkplug_b_pb2 as pb
from plantwire.sparkplug.metric_bytes import EncodedMetrics, ddata_payload, encode_samples
from plantwire.sparkplug.metric_slots import MetricSlot, Undo, encode_wire_values, quality_properties, restore
from plantwire.sparkplug.payload import (
    QUALITY_KEY,
    DataType,
    Metric,
    MetricValue,
    Payload,
    PayloadError,
    Property,
    UnknownMetricError,
    _encode_properties,
    decode_payload,
    encode_payload,
)
from plantwire.sparkplug.topics import (
    NAMESPACE,
    HostState,
    MessageType,
    Outgoing,
    SparkplugTopic,
    StateTopic,
    TopicError,
    check_sparkplug_id,
    decode_state,
    device_topic,
    legacy_state_topic,
    node_topic,
    parse_topic,
    state_topic,
)

REBIRTH: Final = "Node Control/Rebirth"
BDSEQ: Final = "bdSeq"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """What a device's birth says about one metric."""

    name: str
    datatype: DataType
    properties: dict[str, Property] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sample:
    """One value for `EdgeNode.update`; `historical` for values from a store-and-forward backlog."""

    name: str
    value: MetricValue
    timestamp: int
    """Milliseconds since the epoch."""
    historical: bool = False
    quality: int | None = None
    """Sparkplug quality (0 bad, 192 good, 500 stale) sent as the metric's 'Quality' property;
    None sends none (good). `tag_types.sparkplug_quality` maps an OPC UA status code."""


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """A DCMD metric, resolved against the device's birth, for the gateway's command path."""

    device_id: str
    metric: str
    datatype: DataType
    value: MetricValue


@dataclass(slots=True)
class EdgeActions:
    publish: list[Outgoing] = field(default_factory=list)
    writes: list[WriteRequest] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    """Why a command could not be used (unknown device or metric, bad payload)."""
    disconnect: bool = False
    """The primary host went offline: close this MQTT session (the spec's 'walk' to the next server)."""


@dataclass(slots=True)
class _Device:
    specs: dict[str, MetricSpec]
    slots: dict[str, MetricSlot]
    """By metric name: alias, how to encode, the last value recorded (what a DBIRTH says)."""
    epoch: int
    online: bool = True


@dataclass(slots=True)
class _AliasBook:
    """Every (metric name, datatype) a device ever had, with its alias; what its last birth had."""

    aliases: dict[tuple[str, DataType], int] = field(default_factory=dict)
    born: set[int] = field(default_factory=set)
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class RowDrops:
    """Metrics of a row that the device's current birth no longer has (left out, counted)."""

    device_id: str
    dropped: int


class EdgeNode:
    def __init__(
        self,
        group_id: str,
        edge_node_id: str,
        *,
        primary_host_id: str | None = None,
        bd_seq: int = 0,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        """`bd_seq` is the value for the next connection (keep `next_bd_seq` across restarts)."""
        self.group_id = check_sparkplug_id("group id", group_id)
        self.edge_node_id = check_sparkplug_id("edge node id", edge_node_id)
        self.primary_host_id = primary_host_id
        self._next_bd_seq = bd_seq % 256
        self._bd_seq = -1
        self._clock = clock
        self._seq = 0
        self._born = False
        self._connected = False
        self._host_online = primary_host_id is None
        self._host_ts = -1
        self._devices: dict[str, _Device] = {}
        self._books: dict[str, _AliasBook] = {}
        self._next_alias = 1
        self.aliases_changed = False
        """New aliases since `aliases_state()` was last read: keep it before using them."""
        self.row_drops: list[RowDrops] = []

    # --- connection lifecycle -----------------------------------------------------------------

    @property
    def bd_seq(self) -> int:
        """bdSeq of the current (or last) connection, -1 before the first."""
        return self._bd_seq

    @property
    def next_bd_seq(self) -> int:
        return self._next_bd_seq

    @property
    def born(self) -> bool:
        return self._born

    def will(self) -> Outgoing:
        """The NDEATH to register as Will for the connection about to be made (QoS 1, not retained)."""
        self._bd_seq = self._next_bd_seq
        self._next_bd_seq = (self._bd_seq + 1) % 256
        self._born = False
        return self._ndeath()

    def subscriptions(self) -> list[str]:
        subs = [
            node_topic(self.group_id, "NCMD", self.edge_node_id),
            f"{NAMESPACE}/{self.group_id}/DCMD/{self.edge_node_id}/+",
        ]
        if self.primary_host_id is not None:
            subs += [state_topic(self.primary_host_id), legacy_state_topic(self.primary_host_id)]
        return subs

    def on_connected(self) -> list[Outgoing]:
        """Call once subscribed. Births now, or once the primary host says it is online."""
        if self._bd_seq < 0:
            raise RuntimeError("call will() before connecting")
        self._connected = True  # a retained STATE that came before this call still counts
        return self._births() if self._host_online else []

    def on_disconnected(self) -> None:
        self._connected = False
        self._born = False
        self._host_online = self.primary_host_id is None  # learn it again from the next session

    def shutdown(self) -> list[Outgoing]:
        """The NDEATH to publish before an intentional DISCONNECT."""
        self._born = False
        return [self._ndeath()] if self._connected else []

    # --- devices and data ---------------------------------------------------------------------

    def add_device(
        self, device_id: str, specs: Sequence[MetricSpec], values: Iterable[Sample] = (), online: bool = True
    ) -> list[Outgoing]:
        """A device is up (again): DBIRTH with every metric, if the node is born (`online` False: the
        metrics only, for values stored while the device is lost; the DBIRTH comes with `add_device`).

        Values not given keep the last one `update` recorded (also while the node waited to be born).
        """
        check_sparkplug_id("device id", device_id)
        known = self._devices.get(device_id)
        book = self._books.setdefault(device_id, _AliasBook())
        old = known.slots if known is not None else {}
        slots: dict[str, MetricSlot] = {}
        for spec in specs:
            key = (spec.name, spec.datatype)
            alias = book.aliases.get(key)
            if alias is None:
                alias = book.aliases[key] = self._next_alias
                self._next_alias += 1
                self.aliases_changed = True
            slot = slots[spec.name] = MetricSlot(spec.name, spec.datatype, alias)
            was = old.get(spec.name)
            if was is not None and was.recorded and was.datatype == spec.datatype:
                slot.record(was.value, was.timestamp, was.quality)
        for sample in values:
            if sample.name in slots:
                slots[sample.name].record(sample.value, sample.timestamp, sample.quality)
        born = {slot.alias for slot in slots.values()}
        if book.born - born:  # an alias left out: metrics encoded before are checked when published
            book.epoch += 1
            self.aliases_changed = True
        book.born = born
        state = _Device({s.name: s for s in specs}, slots, book.epoch, online)
        self._devices[device_id] = state
        return [self._dbirth(device_id, state)] if self._born and online else []

    def aliases_state(self) -> dict[str, Any]:
        """The aliases as JSON-able data, for `restore_aliases` after a restart; clears `aliases_changed`."""
        self.aliases_changed = False
        return {
            "next_alias": self._next_alias,
            "devices": {
                device_id: {
                    "epoch": book.epoch,
                    "born": sorted(book.born),
                    "aliases": [[name, int(dt), alias] for (name, dt), alias in book.aliases.items()],
                }
                for device_id, book in self._books.items()
            },
        }

    def restore_aliases(self, state: Mapping[str, Any]) -> None:
        """Take back what `aliases_state()` gave (before any device is added); ValueError if malformed."""
        try:
            books = {
                str(device_id): _AliasBook(
                    {(str(name), DataType(dt)): int(alias) for name, dt, alias in entry["aliases"]},
                    {int(a) for a in entry["born"]},
                    int(entry["epoch"]),
                )
                for device_id, entry in state.get("devices", {}).items()
            }
            used = [a for book in books.values() for a in book.aliases.values()]
            next_alias = max(int(state.get("next_alias", 1)), max(used, default=0) + 1)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"not an alias state: {err!r}") from None
        self._books, self._next_alias = books, next_alias

    def epoch(self, device_id: str) -> int:
        """The device's alias epoch now (what `encode_samples`' metrics are to be stored with)."""
        return self._devices[device_id].epoch

    def device_specs(self, device_id: str) -> list[MetricSpec] | None:
        state = self._devices.get(device_id)
        return list(state.specs.values()) if state is not None else None

    def remembered_specs(self, device_id: str) -> list[MetricSpec]:
        """The metrics of the device's last birth as remembered by its aliases (no properties):
        for a device whose stored metrics come before its description, e.g. after a restart."""
        book = self._books.get(device_id)
        if book is None:
            return []
        return [MetricSpec(name, dt) for (name, dt), alias in book.aliases.items() if alias in book.born]

    def device_lost(self, device_id: str) -> list[Outgoing]:
        """DDEATH on behalf of a device the node lost; `add_device` again when it is back."""
        state = self._devices.get(device_id)
        if state is None or not state.online:
            return []
        state.online = False
        if not self._born:
            return []
        return [self._publish("DDEATH", Payload(self._clock(), self._take_seq(), []), device_id)]

    def update(self, device_id: str, samples: Iterable[Sample]) -> list[Outgoing]:
        """DDATA with the values that changed (historical ones always), aliases only."""
        state = self._devices[device_id]
        msg = pb.Payload(timestamp=self._clock(), seq=self._seq)
        add = msg.metrics.add
        undo: Undo = []
        try:
            for s in samples:
                slot = state.slots.get(s.name)
                if slot is None:
                    raise KeyError(f"device {device_id!r} has no metric {s.name!r} in its birth")
                if not s.historical:
                    if slot.unchanged(s.value, s.quality):
                        continue
                    undo.append((slot, slot.recorded, slot.value, slot.timestamp, slot.quality))
                    slot.record(s.value, s.timestamp, s.quality)
                which, raw = ("is_null", True) if s.value is None else slot.raw(s.value)
                m = add(alias=slot.alias, timestamp=s.timestamp, **{which: raw})
                if s.historical:
                    m.is_historical = True
                if s.quality is not None:
                    _encode_properties(m.properties, quality_properties(s.quality))
        except BaseException:
            # A value that does not fit its type raises PayloadError naming the metric, and the
            # device's state (what the next DBIRTH says) stays as it was.
            restore(undo)
            raise
        return self._ddata(device_id, state, msg)

    def update_wire(
        self, device_id: str, items: Iterable[Mapping[str, Any]], historical: bool = False
    ) -> list[Outgoing]:
        """Like `update`, from the JSON wire's data items (`tag`, `ts` in µs, `v`, `q` an OPC UA
        status code), as the gateway's outbox rows hold them: the DDATA is filled straight from
        them, nothing built per value. `historical` flags every item (a store-and-forward backlog).
        """
        state = self._devices[device_id]
        msg = pb.Payload(timestamp=self._clock(), seq=self._seq)
        try:
            encode_wire_values(msg, state.slots, items, historical)
        except KeyError as err:
            raise KeyError(f"device {device_id!r} has no metric {err.args[0]!r} in its birth") from None
        return self._ddata(device_id, state, msg)

    def encode_samples(self, device_id: str, samples: Iterable[wire.Sample]) -> EncodedMetrics:
        """The DDATA metrics of these samples, by exception, recorded now (what a DBIRTH says);
        publish them later with `ddata_of_row`. Samples of tags the device has no metric for (all of
        them for an unknown device) come back in `unknown`, nothing recorded."""
        state = self._devices.get(device_id)
        if state is None:
            return EncodedMetrics(unknown=list(samples))
        return encode_samples(state.slots, samples)

    def ddata_of_row(
        self, device_id: str, metrics: bytes, epoch: int, historical: bool = False
    ) -> list[Outgoing]:
        """The DDATA of metrics `encode_samples` made while the device's alias epoch was `epoch`:
        nothing if the node is not born or the device is offline; `historical` flags every metric
        (a store-and-forward backlog). Metrics whose alias the current birth no longer has (a tag
        removed or retyped since) are left out and noted in `row_drops`."""
        state = self._devices[device_id]
        if not metrics or not self._born or not state.online:
            return []
        if historical or epoch != state.epoch:
            msg = pb.Payload.FromString(metrics)
            if epoch != state.epoch:
                born = {slot.alias for slot in state.slots.values()}
                keep = [m for m in msg.metrics if m.alias in born]
                if len(keep) < len(msg.metrics):
                    self.row_drops.append(RowDrops(device_id, len(msg.metrics) - len(keep)))
                    msg = pb.Payload(metrics=keep)
                    if not keep:
                        return []
            if historical:
                for m in msg.metrics:
                    m.is_historical = True
            msg.timestamp = self._clock()
            msg.seq = self._take_seq()
            data = msg.SerializeToString()
        else:
            data = ddata_payload(self._clock(), self._take_seq(), metrics)
        return [Outgoing(device_topic(self.group_id, "DDATA", self.edge_node_id, device_id), data, 0, False)]

    def _ddata(self, device_id: str, state: _Device, msg: pb.Payload) -> list[Outgoing]:
        if not msg.metrics or not self._born or not state.online:
            return []
        self._take_seq()
        data = msg.SerializeToString()
        return [Outgoing(device_topic(self.group_id, "DDATA", self.edge_node_id, device_id), data, 0, False)]

    # --- incoming -----------------------------------------------------------------------------

    def on_message(self, topic: str, payload: bytes) -> EdgeActions:
        actions = EdgeActions()
        try:
            parsed = parse_topic(topic)
        except TopicError as err:
            actions.rejected.append(str(err))
            return actions
        if isinstance(parsed, StateTopic):
            self._on_state(parsed, payload, actions)
        elif parsed.group_id != self.group_id or parsed.edge_node_id != self.edge_node_id:
            actions.rejected.append(f"topic {topic!r} is not for this edge node")
        elif parsed.message_type == "NCMD":
            self._on_ncmd(payload, actions)
        elif parsed.message_type == "DCMD":
            self._on_dcmd(parsed, payload, actions)
        return actions

    def _on_state(self, parsed: StateTopic, payload: bytes, actions: EdgeActions) -> None:
        if parsed.host_id != self.primary_host_id:
            return
        try:
            state: HostState = decode_state(payload, legacy=parsed.legacy)
        except TopicError as err:
            actions.rejected.append(str(err))
            return
        if state.timestamp is not None:
            if state.timestamp < self._host_ts:
                return  # an older STATE than one already seen: ignore it
            self._host_ts = state.timestamp
        self._host_online = state.online
        if state.online and self._connected and not self._born:
            actions.publish += self._births()
        elif not state.online and self._born:
            actions.publish += self.shutdown()
            actions.disconnect = True

    def _on_ncmd(self, payload: bytes, actions: EdgeActions) -> None:
        try:
            decoded = decode_payload(
                payload, lambda alias, name: DataType.Boolean if name == REBIRTH else None
            )
        except PayloadError as err:
            actions.rejected.append(f"NCMD: {err}")
            return
        for m in decoded.metrics:
            if m.name == REBIRTH and m.value is True and self._connected and self._host_online:
                actions.publish += self._births()

    def _on_dcmd(self, parsed: SparkplugTopic, payload: bytes, actions: EdgeActions) -> None:
        device_id = parsed.device_id or ""
        state = self._devices.get(device_id)
        if state is None:
            actions.rejected.append(f"DCMD for unknown device {device_id!r}")
            return
        by_alias = {slot.alias: name for name, slot in state.slots.items()}

        def lookup(alias: int | None, name: str | None) -> DataType | None:
            key = by_alias.get(alias) if alias is not None else name
            spec = state.specs.get(key) if key is not None else None
            return spec.datatype if spec is not None else None

        try:
            decoded = decode_payload(payload, lookup)
        except UnknownMetricError as err:
            actions.rejected.append(f"DCMD for device {device_id!r}: {err}")
            return
        except PayloadError as err:
            actions.rejected.append(f"DCMD for device {device_id!r}: {err}")
            return
        for m in decoded.metrics:
            name = by_alias.get(m.alias) if m.alias is not None else m.name
            spec = state.specs.get(name) if name is not None else None
            if spec is None or m.datatype != spec.datatype:
                actions.rejected.append(f"DCMD metric {m.name or m.alias!r} does not match the DBIRTH")
                continue
            actions.writes.append(WriteRequest(device_id, spec.name, spec.datatype, m.value))

    # --- messages -----------------------------------------------------------------------------

    def _take_seq(self) -> int:
        seq = self._seq
        self._seq = (seq + 1) % 256
        return seq

    def _publish(self, kind: MessageType, payload: Payload, device_id: str | None = None) -> Outgoing:
        topic = (
            node_topic(self.group_id, kind, self.edge_node_id)
            if device_id is None
            else device_topic(self.group_id, kind, self.edge_node_id, device_id)
        )
        return Outgoing(topic, encode_payload(payload), 0, False)

    def _ndeath(self) -> Outgoing:
        bd = Metric(BDSEQ, DataType.Int64, self._bd_seq, timestamp=self._clock())
        payload = encode_payload(Payload(self._clock(), None, [bd]))
        return Outgoing(node_topic(self.group_id, "NDEATH", self.edge_node_id), payload, 1, False)

    def _births(self) -> list[Outgoing]:
        ts = self._clock()
        self._seq = 0
        nbirth = Payload(
            ts,
            self._take_seq(),
            [
                Metric(BDSEQ, DataType.Int64, self._bd_seq, timestamp=ts),
                Metric(REBIRTH, DataType.Boolean, False, timestamp=ts),
            ],
        )
        self._born = True
        out = [self._publish("NBIRTH", nbirth)]
        for device_id, state in self._devices.items():
            if state.online:
                out.append(self._dbirth(device_id, state))
        return out

    def _dbirth(self, device_id: str, state: _Device) -> Outgoing:
        state.online = True
        ts = self._clock()
        metrics = []
        for name, spec in state.specs.items():
            slot = state.slots[name]
            value, value_ts = (slot.value, slot.timestamp) if slot.recorded else (None, ts)
            props = spec.properties
            if slot.quality is not None:
                props = {**props, QUALITY_KEY: Property(DataType.Int32, slot.quality)}
            metrics.append(Metric(name, spec.datatype, value, slot.alias, value_ts, properties=props))
        return self._publish("DBIRTH", Payload(ts, self._take_seq(), metrics), device_id)
