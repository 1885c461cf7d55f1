"""The platform as a Sparkplug B host application: any edge node's births and data into the same store.

`plantwire.sparkplug.host.HostApplication` keeps the session rules (bdSeq/seq per edge node,
rebirth requests on a seq gap, on data before a birth and on an unknown alias, NDEATH only with
the matching bdSeq); this module owns its MQTT connection and the store writes:

- own connection, client id `pw-spb-<client_id>`, clean session (what the specification asks of a
  host), Will = STATE offline; after the SUBACK for `spBv1.0/#` the STATE birth (retained, QoS 1);
- paho's thread runs the host session (under a lock that REST writes' `send_dcmd` shares) and
  puts each message's outcome into a bounded queue (a full queue stops paho reading: the broker
  holds the rest); rebirth NCMDs are published from there;
- the writer thread (`ack_after_commit.AckAfterCommitWriter`, the one `mqtt_ingest` uses) stores in
  message order: a DBIRTH's metrics become the device's meta (tags with types, units, ranges),
  values become points, NDEATH/DDEATH the gateway's/device's status offline; messages that carry
  only values share a commit; each message is acknowledged only after its writes committed (manual
  acks); a failing store is retried with backoff, and at shutdown a writer stuck on it is abandoned
  with its messages unacknowledged; the store ignores points it already has, so a redelivered
  message stores nothing twice.

Ids: group `G`, edge node `E`, device `D` -> gateway id `G.E`, device id `D`; node-level metrics
(other than bdSeq and Node Control) -> device id `E`. Ids that are not valid Plantwire ids
(wire.check_id) are refused and counted.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any, Final

import paho.mqtt.client as mqtt

from plantwire import wire
from plantwire.broker_auth import PLATFORM_SPARKPLUG_CLIENT_PREFIX
from plantwire.logs import get_logger
from plantwire.mqtt_control import new_client
from plantwire.sparkplug.edge import BDSEQ, REBIRTH
from plantwire.sparkplug.host import HostApplication, HostResult, MetricInfo, StatusChange
from plantwire.sparkplug.payload import DataType, PayloadError
from plantwire.sparkplug.tag_types import opcua_status, plantwire_type, to_wire_value
from plantwire_platform.ingest.ack_after_commit import AckAfterCommitWriter
from plantwire_platform.ingest.mqtt_ingest import CommittedCallback
from plantwire_platform.ingest.ownership import DeviceOwners
from plantwire_platform.ingest.sparkplug_status import SparkplugHostStatus
from plantwire_platform.ingest.stats import RateLimitedWarning
from plantwire_platform.settings import PlatformSettings
from plantwire_platform.store.model import IncomingBatch, Registration, Store

log = get_logger(__name__)

_NODE_CONTROL: Final = frozenset({BDSEQ, REBIRTH})
ENDPOINT_PREFIX: Final = "sparkplug://"


def gateway_id(group_id: str, edge_node_id: str) -> str:
    """The Plantwire gateway id of a Sparkplug edge node: `<group>.<edge node>`."""
    return wire.check_id("gateway", f"{group_id}.{edge_node_id}")


@dataclass(slots=True)
class _Outcome:
    """What one message asks of the store, in order: metas, points, statuses; then its ack."""

    metas: list[tuple[str, str, wire.DeviceMeta]] = field(default_factory=list)
    batches: list[IncomingBatch] = field(default_factory=list)
    device_status: list[tuple[str, str, wire.DeviceStatus]] = field(default_factory=list)
    gateway_status: list[tuple[str, wire.GatewayStatus]] = field(default_factory=list)

    def points(self) -> int | None:
        """Values only: it may share a commit (with its value count); anything else commits alone."""
        if self.metas or self.device_status or self.gateway_status:
            return None
        return sum(len(b.batch.samples) for b in self.batches)


@dataclass(slots=True)
class SparkplugIngestStats:
    messages: int = 0
    points_stored: int = 0
    duplicates: int = 0
    refused_ids: int = 0
    errors: int = 0
    store_errors: int = 0
    ownership_rejected: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("data", "meta", "status"), 0)
    )
    """Births, data and deaths of a device another gateway owns: not stored (acknowledged)."""


class SparkplugIngest:
    """``async with SparkplugIngest(settings, store, on_committed):`` runs it (see module doc)."""

    def __init__(
        self, settings: PlatformSettings, store: Store, on_committed: CommittedCallback | None = None
    ):
        self._settings = settings
        self._store = store
        self._on_committed = on_committed
        self.host = HostApplication(settings.sparkplug_host.host_id)
        self.stats = SparkplugIngestStats()
        self._subscribe_mid: int | None = None
        self.subscribed = threading.Event()
        self._seq: dict[tuple[str, str], int] = {}
        self._warn = RateLimitedWarning(__name__, "sparkplug_message_refused")
        self._host_lock = threading.Lock()
        """The host session runs on paho's thread; REST writes (`send_dcmd`) read it from the loop's."""
        self._connected = False
        self.owners = DeviceOwners(store)
        """Device ownership, shared rule with the JSON ingest: an edge node cannot take a device
        another gateway (Plantwire or Sparkplug) owns, and none can take its devices."""
        self._client = self._make_client()
        self._writer: AckAfterCommitWriter[_Outcome] = AckAfterCommitWriter(
            name="plantwire-spb-writer",
            client=self._client,
            queue_max=settings.store.queue_max_messages,
            commit_interval_s=settings.store.commit_interval_ms / 1000,
            max_points=settings.store.max_batch_points,
            points=_Outcome.points,
            commit=self._commit,
        )

    def _make_client(self) -> mqtt.Client:
        s = self._settings
        client_id = f"{PLATFORM_SPARKPLUG_CLIENT_PREFIX}{s.client_id}"
        client = new_client(s.mqtt, client_id, clean_session=True, manual_ack=True)
        will = self.host.will()
        client.will_set(will.topic, will.payload, will.qos, will.retain)
        client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(s.mqtt.reconnect_max_delay)))
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        return client

    async def __aenter__(self) -> SparkplugIngest:
        m = self._settings.mqtt
        self._writer.start()
        self._client.connect_async(m.host, m.port, keepalive=m.keepalive)
        self._client.loop_start()
        log.info("sparkplug_host_started", host_id=self.host.host_id, host=m.host, port=m.port)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._writer.stop()
        self.stats.store_errors = self._writer.store_errors
        death = self.host.death()
        info = self._client.publish(death.topic, death.payload, qos=death.qos, retain=death.retain)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            info.wait_for_publish(2.0)
        self._client.disconnect()
        self._client.loop_stop()
        log.info("sparkplug_host_stopped", messages=self.stats.messages, points=self.stats.points_stored)

    def status(self) -> SparkplugHostStatus:
        """A snapshot of the counters and the sessions' state (any thread)."""
        with self._host_lock:
            nodes, devices = self.host.online_counts()
            c = self.host.counters
        st = self.stats
        return SparkplugHostStatus(
            host_id=self.host.host_id,
            connected=self._connected,
            subscribed=self.subscribed.is_set(),
            nodes_online=nodes,
            devices_online=devices,
            messages=st.messages,
            points_stored=st.points_stored,
            duplicates=st.duplicates,
            rebirths_requested=c.rebirths_requested,
            seq_gaps=c.seq_gaps,
            dropped_messages=c.dropped_messages,
            stale_ndeaths=c.stale_ndeaths,
            bad_payloads=c.bad_payloads,
            refused={
                "ids": st.refused_ids,
                "nodes": c.refused_nodes,
                "devices": c.refused_devices,
                "errors": st.errors,
            },
            ownership_rejected=dict(st.ownership_rejected),
            store_errors=self._writer.store_errors,
        )

    # --- paho thread ---------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("sparkplug_host_connect_refused", reason=str(reason))
            return
        self._writer.connected()
        self._connected = True
        _, self._subscribe_mid = client.subscribe([(t, 1) for t in self.host.subscriptions()])

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected = False

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        if mid != self._subscribe_mid:
            return
        birth = (
            self.host.birth()
        )  # STATE online only once subscribed (tck-id-host-topic-phid-birth-sub-required)
        client.publish(birth.topic, birth.payload, qos=birth.qos, retain=birth.retain)
        self.subscribed.set()
        log.info("sparkplug_host_online", host_id=self.host.host_id)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._writer.stopping:
            return
        self.stats.messages += 1
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = ""
        with self._host_lock:
            result = self.host.on_message(topic, bytes(msg.payload))
            outcome = self._outcome(result)
        for out in result.publish:
            client.publish(out.topic, out.payload, qos=out.qos, retain=out.retain)
        for error in result.errors:
            self.stats.errors += 1
            self._warn.warn("sparkplug", topic=topic, problem=error)
        self._writer.offer(outcome, msg.mid, msg.qos)

    def _outcome(self, result: HostResult) -> _Outcome:
        out = _Outcome()
        samples: dict[tuple[str, str], list[wire.Sample]] = {}
        sample, as_is, good, date_time = wire.Sample, _AS_IS, wire.STATUS_GOOD, DataType.DateTime
        for chunk in result.data:
            ids = self._ids(chunk.group_id, chunk.edge_node_id, chunk.device_id) if chunk.metrics else None
            if ids is None:
                continue
            batch = samples.setdefault(ids, [])
            names = [m.name for m in chunk.metrics]
            stamps = [ts * 1000 for ts in chunk.timestamps]
            if chunk.plain and chunk.device_id is not None:  # a device's DDATA: the values as they are
                batch.extend(map(sample, names, stamps, chunk.values))  # type: ignore[arg-type]  # decoded values are wire values
                continue
            for name, metric, v, ts, q in zip(
                names, chunk.metrics, chunk.values, stamps, chunk.quality, strict=True
            ):
                if chunk.device_id is None and name in _NODE_CONTROL:
                    continue
                datatype = metric.datatype
                value = v if type(v) in as_is and datatype is not date_time else to_wire_value(datatype, v)
                status = good if q is None else opcua_status(q)
                batch.append(sample(name, ts, value, status))  # type: ignore[arg-type]  # as above
            if not batch:
                del samples[ids]
        for c in result.status:  # a birth: the device's (or node's) metrics become its meta
            info = self.host.metric_info(c.group_id, c.edge_node_id, c.device_id) if c.online else {}
            if any(name not in _NODE_CONTROL for name in info):
                ids = self._ids(c.group_id, c.edge_node_id, c.device_id)
                if ids is not None:
                    out.metas.append((*ids, _meta(c.group_id, c.edge_node_id, c.device_id, info)))
        for (gw, dev), batch in samples.items():
            seq = self._seq.get((gw, dev), 0) + 1
            self._seq[(gw, dev)] = seq
            out.batches.append(IncomingBatch(gw, dev, wire.DataBatch(seq, wire.now_us(), batch)))
        for change in result.status:
            self._status(change, out)
        return out

    def _status(self, change: StatusChange, out: _Outcome) -> None:
        state: wire.DeviceState = "online" if change.online else "offline"
        since = change.timestamp * 1000
        if change.device_id is None:
            try:
                gw = gateway_id(change.group_id, change.edge_node_id)
            except wire.WireError:
                return
            gw_state: wire.GatewayState = "online" if change.online else "offline"
            out.gateway_status.append((gw, wire.GatewayStatus(gw_state, since, "sparkplug")))
            return
        ids = self._ids(change.group_id, change.edge_node_id, change.device_id)
        if ids is not None:
            endpoint = f"{ENDPOINT_PREFIX}{change.group_id}/{change.edge_node_id}/{change.device_id}"
            error = None if change.online else "DDEATH or NDEATH"
            out.device_status.append((*ids, wire.DeviceStatus(state, since, endpoint, error)))

    def _ids(self, group: str, edge: str, device: str | None) -> tuple[str, str] | None:
        try:
            return gateway_id(group, edge), wire.check_id("device", device if device is not None else edge)
        except wire.WireError as err:
            self.stats.refused_ids += 1
            self._warn.warn("ids", problem=str(err))
            return None

    # --- commands (the event loop's thread) ---------------------------------------------------------

    def send_dcmd(
        self, group_id: str, edge_node_id: str, device_id: str, metric: str, value: wire.Value
    ) -> str | None:
        """Publish a DCMD writing `value` to a metric of the device's current DBIRTH (QoS 0, as the
        specification says); None when handed to the connection, else why nothing was sent
        (`commands.sparkplug_writes` turns it into the REST answer)."""
        with self._host_lock:
            host = self.host
            if not self._connected:
                return "not_connected"
            if not host.node_online(group_id, edge_node_id):
                if host.metric_info(group_id, edge_node_id, None):
                    return "node_offline"
                rebirth = host.request_rebirth(group_id, edge_node_id)
                if rebirth is not None:
                    self._client.publish(rebirth.topic, rebirth.payload, rebirth.qos, rebirth.retain)
                return "birth_missing"
            if not host.device_online(group_id, edge_node_id, device_id):
                return "device_offline"
            info = host.metric_info(group_id, edge_node_id, device_id).get(metric)
            if info is None:
                return "unknown_metric"
            if info.read_only:
                return "read_only"
            try:
                out = host.command(group_id, edge_node_id, device_id, metric, value)
            except (PayloadError, KeyError):
                return "invalid_value"
        info_pub = self._client.publish(out.topic, out.payload, out.qos, out.retain)
        if info_pub.rc != mqtt.MQTT_ERR_SUCCESS:
            return "not_connected"
        log.info("sparkplug_dcmd_sent", topic=out.topic, metric=metric)
        return None

    def _owned(self, o: _Outcome) -> None:
        """Drop (and count) what `o` says about devices another gateway owns (writer thread; a
        StoreError is retried by the writer like any store write)."""
        o.metas = [m for m in o.metas if self._allowed("meta", m[0], m[1])]
        o.batches = [b for b in o.batches if self._allowed("data", b.gateway, b.device)]
        o.device_status = [d for d in o.device_status if self._allowed("status", d[0], d[1])]

    def _allowed(self, kind: str, gateway: str, device: str) -> bool:
        if self.owners.allows(gateway, device):
            return True
        self.stats.ownership_rejected[kind] += 1
        self._warn.warn("not_owner", gateway=gateway, device=device, kind=kind)
        return False

    # --- writer thread -------------------------------------------------------------------------

    def _commit(self, outcomes: list[_Outcome]) -> bool:
        """Store one group in order (False: abandoned at shutdown, left unacknowledged)."""
        store, retry = self._store, self._writer.retry
        claims = [(g, d) for o in outcomes for g, d in _devices(o)]
        if not retry("claim_devices", partial(self.owners.claim_unknown, claims)):
            return False
        if not all(retry("ownership", partial(self._owned, o)) for o in outcomes):
            return False
        # A birth's metas in one commit, then its values, then its statuses in one commit.
        metas = [Registration(*m) for o in outcomes for m in o.metas]
        statuses = [Registration(*d) for o in outcomes for d in o.device_status]
        statuses += [Registration(g, None, s) for o in outcomes for g, s in o.gateway_status]
        if metas and not retry("apply_meta", partial(store.apply_registrations, metas)):
            return False
        batches = [b for o in outcomes for b in o.batches]
        if batches:
            result = None

            def write() -> None:
                nonlocal result
                result = store.write_batches(batches)

            if not retry("write_batches", write):
                return False
            assert result is not None
            self.stats.points_stored += result.stored
            self.stats.duplicates += result.duplicates
        if statuses and not retry("apply_status", partial(store.apply_registrations, statuses)):
            return False
        self.stats.store_errors = self._writer.store_errors
        if batches and self._on_committed is not None:
            try:
                self._on_committed(batches)
            except Exception:
                log.exception("on_committed_failed")
        return True


def _devices(o: _Outcome) -> list[tuple[str, str]]:
    """(gateway, device) of everything `o` says about devices, in the order `_owned` checks them."""
    return [
        *((g, d) for g, d, _ in o.metas),
        *((b.gateway, b.device) for b in o.batches),
        *((g, d) for g, d, _ in o.device_status),
    ]


_AS_IS: Final = frozenset({float, int, bool, str})
"""Decoded value types that are wire values as they are (`to_wire_value` for the others)."""


def _meta(group: str, edge: str, device: str | None, info: dict[str, MetricInfo]) -> wire.DeviceMeta:
    tags: Sequence[wire.TagInfo] = [
        wire.TagInfo(
            tag=m.name,
            node_id=f"spb:{m.alias}" if m.alias is not None else f"spb:{m.name}",
            data_type=plantwire_type(m.datatype),
            unit=m.unit,
            low=m.low,
            high=m.high,
            writable=not m.read_only,  # Sparkplug: any birth metric takes a DCMD unless readOnly
        )
        for m in info.values()
        if m.name not in _NODE_CONTROL
    ]
    root = f"{group}/{edge}/{device}" if device is not None else f"{group}/{edge}"
    return wire.DeviceMeta(endpoint=f"{ENDPOINT_PREFIX}{root}", root=root, tags=list(tags))
