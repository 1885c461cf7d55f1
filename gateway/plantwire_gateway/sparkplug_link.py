"""The gateway as a Sparkplug B edge node: the same outbox pump as `MqttLink`, Sparkplug on the wire.

One edge node per gateway (`sparkplug.group_id`, edge node id = the gateway id unless set), one
Sparkplug device per OPC UA device. `plantwire.sparkplug.edge.EdgeNode` decides what to publish;
this module owns its MQTT connection (its own client id `plantwire-gw-<id>-spb`, so its Will can be
the NDEATH while the JSON link's Will stays the gateway's offline status):

- CONNECT with the NDEATH (bdSeq) as Will; bdSeq survives restarts in `<data_dir>/sparkplug.json`;
- after SUBACK (NCMD, DCMD, the primary host's STATE): NBIRTH + a DBIRTH per device, or nothing
  until the primary host says it is online;
- each batch of a device's values is encoded when the gateway stores it (`store`): the DDATA's
  metrics by exception with aliases (`plantwire.sparkplug.metric_bytes`), one outbox row; the
  aliases are kept in the same outbox, in the same transactions, so a row means the same metrics
  after a restart. Publishing a row only adds the DDATA's timestamp and seq; rows made before this
  connection came up (the store-and-forward backlog) go out with `is_historical`; the row leaves
  the outbox on the DDATA's PUBACK (`data_qos` 1) or once written (`data_qos` 0). (Rows of JSON
  data batches, from a gateway before this format, are still read and sent.)
- a device's meta becomes its DBIRTH (the tag list: name, datatype, unit and range), its offline
  status a DDEATH, its next online status a DBIRTH again;
- NCMD `Node Control/Rebirth` re-sends the births on the same connection; DCMD writes go to the
  gateway's command path (`CommandService.write`) with the same checks as a `cmd` write;
- a graceful stop publishes the NDEATH (acknowledged) before DISCONNECT.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import orjson
import paho.mqtt.client as mqtt

from plantwire import wire
from plantwire.broker_auth import gateway_sparkplug_client_id
from plantwire.logs import get_logger
from plantwire.mqtt_control import new_client
from plantwire.sparkplug.edge import EdgeNode, MetricSpec, WriteRequest
from plantwire.sparkplug.metric_bytes import ROW_MAGIC, pack_row, unpack_row
from plantwire.sparkplug.payload import DataType, PayloadError, Property, engineering_properties
from plantwire.sparkplug.tag_types import (
    READ_ONLY_KEY,
    read_only_property,
    sparkplug_type,
    to_wire_value,
)
from plantwire.sparkplug.topics import Outgoing
from plantwire.wire import Value

from .mqtt_link import LoopConnection, MqttLink
from .outbox import LinkStateError, Outbox, OutboxRow
from .settings import GatewaySettings
from .stats import GatewayStats

log = get_logger(__name__)

STATE_FILE: Final = "sparkplug.json"
_SUBACK_TIMEOUT: Final = 10.0
WRITE_QUEUE_MAX: Final = 100
"""DCMD writes waiting for the command path; beyond this they are dropped with a warning."""
WRITE_EXPIRY_US: Final = 30_000_000

Writer = Callable[[wire.Command], Awaitable[wire.CommandReply]]


def metric_specs(meta: wire.DeviceMeta) -> list[MetricSpec]:
    """A device's tags as the metrics of its DBIRTH: datatype from the OPC UA type, unit and range,
    and `readOnly` = true for a tag that is not writable (so a host refuses a write before it
    sends the DCMD, which the command path would refuse anyway)."""
    return [MetricSpec(t.tag, sparkplug_type(t.data_type), _properties(t)) for t in meta.tags]


def _properties(t: wire.TagInfo) -> dict[str, Property]:
    props = engineering_properties(t.unit, t.low, t.high)
    if not t.writable:
        props[READ_ONLY_KEY] = read_only_property()
    return props


def scalar(value: wire.JsonValue) -> Value:
    """A wire value as a Sparkplug scalar: arrays and structures as their compact JSON text."""
    return json.dumps(value, separators=(",", ":")) if isinstance(value, list | dict) else value


def _row_items(payload: bytes) -> tuple[int, list[dict[str, Any]]]:
    """(sent, values) of an outbox row, the gateway's own JSON data batch, read as plain dicts: the
    edge node checks each value against its metric's type. Raises WireError for anything else."""
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as err:
        raise wire.WireError(f"not JSON: {err}") from err
    sent = obj.get("sent") if type(obj) is dict else None
    items = obj.get("values") if type(obj) is dict else None
    if type(sent) is not int or type(items) is not list:
        wire.decode_data(payload)  # raises WireError saying what is wrong
        raise wire.WireError("not a data batch")
    return sent, items


def read_next_bd_seq(path: Path) -> int:
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("next_bd_seq", 0)
    except (OSError, ValueError, AttributeError):
        return 0
    return value % 256 if type(value) is int else 0


def write_next_bd_seq(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"next_bd_seq": value}), encoding="utf-8")
    os.replace(tmp, path)


class SparkplugLink(MqttLink):
    """`publish_retained` and `notify_data` like `MqttLink`; `run()` keeps the edge node connected."""

    def __init__(self, settings: GatewaySettings, outbox: Outbox, stats: GatewayStats) -> None:
        super().__init__(settings.mqtt, settings.id, outbox, stats, window=settings.outbox.inflight)
        spb = settings.sparkplug
        self._state_file = settings.data_dir / STATE_FILE
        self.node = EdgeNode(
            spb.group_id,
            spb.edge_node_id or settings.id,
            primary_host_id=spb.primary_host_id,
            bd_seq=read_next_bd_seq(self._state_file),
        )
        if outbox.link_state is not None:
            try:
                self.node.restore_aliases(orjson.loads(outbox.link_state))
            except (orjson.JSONDecodeError, ValueError) as err:
                raise LinkStateError(
                    f"the metric aliases kept in {outbox.path} cannot be read ({err}); its "
                    f"{outbox.rows} unsent rows need them: move the file away to start over without them"
                ) from None
        self.data_qos = spb.data_qos
        self.writer: Writer | None = None
        """The gateway's command path for DCMD writes (set by the gateway)."""
        self._specs: dict[str, list[MetricSpec]] = {}
        self._types: dict[str, dict[str, DataType]] = {}
        self._will: Outgoing | None = None
        self._online: dict[str, bool] = {}
        self._since_us = 0
        """When the current connection came up: rows made before it are the backlog (historical)."""
        self._writes: asyncio.Queue[WriteRequest] = asyncio.Queue(WRITE_QUEUE_MAX)
        self.rejected = 0
        """Commands and values that could not be used (logged)."""

    # --- from the device sessions (the same calls the JSON link gets) ---------------------------

    async def store(self, device: str, batches: list[list[wire.Sample]]) -> None:
        """Encode each batch's metrics now (by exception, the device's aliases) into an outbox row."""
        sent = wire.now_us()
        payloads: list[bytes] = []
        refused: list[str] = []
        for samples in batches:
            enc = self.node.encode_samples(device, samples)
            data = enc.data
            if enc.unknown:  # a device or tag with no meta yet: add its metrics, then those values
                self._ensure_sample_metrics(device, enc.unknown)
                more = self.node.encode_samples(device, enc.unknown)
                data += more.data
                enc.added += more.added
                refused += more.refused
            refused += enc.refused
            if enc.added:
                payloads.append(pack_row(sent, self.node.epoch(device), data))
        state = orjson.dumps(self.node.aliases_state()) if self.node.aliases_changed else None
        # Shielded: once called, the rows are stored even if this task is cancelled (as recorded).
        await self.outbox.append_encoded(device, payloads, state)
        if refused:
            self.rejected += len(refused)
            log.error("sparkplug_values_unencodable", device_id=device, values=len(refused), first=refused[0])
        self.notify_data()

    def _ensure_sample_metrics(self, device: str, samples: list[wire.Sample]) -> None:
        """Values of a device (or tag) with no meta yet: add the metrics, typed by value, and rebirth."""
        specs = self._specs.get(device) or self.node.remembered_specs(device)
        known = {spec.name for spec in specs}
        new = {s.tag: s.value for s in samples if s.tag not in known}
        self._add_metrics(device, specs, new)

    def publish_retained(self, topic: str, payload: bytes) -> None:
        """A device's meta becomes its DBIRTH, its status DDEATH (offline) or DBIRTH (online again)."""
        try:
            parsed = wire.parse_topic(topic)
        except wire.WireError:
            return
        device = parsed.device
        if device is None:
            return
        try:
            if parsed.kind == "meta":
                self._on_meta(device, payload)
            elif parsed.kind == "status":
                self._on_status(device, wire.decode_device_status(payload).state)
        except wire.WireError as err:
            log.warning(
                "sparkplug_device_message_unusable", device_id=device, kind=parsed.kind, error=str(err)
            )

    def _on_meta(self, device: str, payload: bytes) -> None:
        if not payload:  # detached: the retained meta is cleared
            self._publish(self.node.device_lost(device))
            self._specs.pop(device, None)
            self._types.pop(device, None)
            self._online.pop(device, None)
            return
        specs = metric_specs(wire.decode_meta(payload))
        self._set_specs(device, specs)
        self._online[device] = True
        self._publish(self.node.add_device(device, specs))

    def _on_status(self, device: str, state: wire.DeviceState) -> None:
        if state == "offline" and self._online.get(device):
            self._online[device] = False
            self._publish(self.node.device_lost(device))
        elif state == "online" and self._online.get(device) is False:
            self._online[device] = True
            self._publish(self.node.add_device(device, self._specs[device]))

    # --- the connection ---------------------------------------------------------------------

    @property
    def _client_id(self) -> str:
        return gateway_sparkplug_client_id(self.gateway_id)

    def _new_client(self) -> mqtt.Client:
        client = new_client(self.settings, self._client_id, clean_session=True, reconnect_on_failure=False)
        will = self._will = self.node.will()
        write_next_bd_seq(self._state_file, self.node.next_bd_seq)
        client.will_set(will.topic, will.payload, will.qos, will.retain)
        client.max_inflight_messages_set(self.window + 64)
        client.max_queued_messages_set(0)
        return client

    async def _session_start(self, conn: LoopConnection) -> None:
        """Subscribe (NCMD, DCMD, STATE), wait for the SUBACK, then the births (unless waiting for a host)."""
        loop = asyncio.get_running_loop()
        subacked: asyncio.Future[None] = loop.create_future()

        def on_subscribe(c: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
            if not subacked.done():
                subacked.set_result(None)

        conn.client.on_subscribe = on_subscribe
        conn.client.on_message = lambda c, userdata, msg: self._on_message(
            conn, msg.topic, bytes(msg.payload)
        )
        self._since_us = wire.now_us()
        conn.client.subscribe([(topic, 1) for topic in self.node.subscriptions()])
        try:
            async with asyncio.timeout(_SUBACK_TIMEOUT):
                await subacked
        except TimeoutError:
            conn.lost_reason = "no SUBACK for the Sparkplug command topics"
            conn.lost.set()
            return
        self._publish(self.node.on_connected())
        log.info(
            "sparkplug_session_started",
            group_id=self.node.group_id,
            edge_node_id=self.node.edge_node_id,
            bd_seq=self.node.bd_seq,
            born=self.node.born,
        )

    def _drop_connection(self, conn: LoopConnection) -> None:
        self.node.on_disconnected()
        super()._drop_connection(conn)

    def _on_message(self, conn: LoopConnection, topic: str, payload: bytes) -> None:
        actions = self.node.on_message(topic, payload)
        self._publish(actions.publish)
        if actions.publish:
            self._wake.set()  # born now (host online, or a rebirth): the pump may go on
        for reason in actions.rejected:
            self.rejected += 1
            log.warning("sparkplug_command_rejected", topic=topic, reason=reason)
        for write in actions.writes:
            try:
                self._writes.put_nowait(write)
            except asyncio.QueueFull:
                self.rejected += 1
                log.warning("sparkplug_write_dropped", device_id=write.device_id, reason="queue full")
        if actions.disconnect:
            log.info("sparkplug_primary_host_offline", host_id=self.node.primary_host_id)
            conn.client.disconnect()

    def _publish(self, outs: list[Outgoing]) -> None:
        conn = self._conn
        if conn is None:
            return
        for out in outs:
            conn.client.publish(out.topic, out.payload, qos=out.qos, retain=out.retain)

    # --- the pump's hooks -------------------------------------------------------------------

    def _ready(self) -> bool:
        return self.node.born

    def _publish_row(self, client: mqtt.Client, row: OutboxRow) -> mqtt.MQTTMessageInfo | None:
        if row.payload.startswith(ROW_MAGIC):
            return self._publish_encoded(client, row)
        return self._publish_json_row(client, row)

    def _publish_encoded(self, client: mqtt.Client, row: OutboxRow) -> mqtt.MQTTMessageInfo | None:
        device = row.device
        try:
            encoded = unpack_row(row.payload)
        except ValueError as err:
            self._unreadable(row, err)
            return None
        if self.node.device_specs(device) is None:  # stored before a restart, the device not back yet
            specs = self.node.remembered_specs(device)
            if not specs:
                self._unreadable(row, KeyError(f"no aliases kept for device {device!r}"))
                return None
            self._add_metrics(device, specs, {})
        lost = self._online.get(device) is False
        out: list[Outgoing] = []
        if lost:  # values sampled before the loss but published after the DDEATH: birth, data, death
            out += self.node.add_device(device, self._specs[device])
        historical = encoded.sent_us < self._since_us
        out += self.node.ddata_of_row(device, encoded.metrics, encoded.epoch, historical=historical)
        for drop in self.node.row_drops:
            self.rejected += drop.dropped
            log.warning(
                "sparkplug_values_of_changed_metrics_dropped",
                device_id=drop.device_id,
                values=drop.dropped,
                reason="the tag was removed or retyped after the values were stored",
            )
        self.node.row_drops.clear()
        if lost:
            out += self.node.device_lost(device)
        return self._send(client, out)

    def _send(self, client: mqtt.Client, out: list[Outgoing]) -> mqtt.MQTTMessageInfo | None:
        """Publish what a row became; the DDATA's message info (None if there is no DDATA)."""
        info = None
        for o in out:
            is_data = "/DDATA/" in o.topic
            sent_info = client.publish(
                o.topic, o.payload, qos=self.data_qos if is_data else o.qos, retain=o.retain
            )
            if is_data:
                info = sent_info
        return info

    def _publish_json_row(self, client: mqtt.Client, row: OutboxRow) -> mqtt.MQTTMessageInfo | None:
        device = row.device
        try:
            sent, items = _row_items(row.payload)
            self._ensure_metrics(device, items)
        except (wire.WireError, KeyError, TypeError, AttributeError) as err:
            self._unreadable(row, err)  # cannot happen for rows this gateway wrote
            return None
        lost = self._online.get(device) is False
        out: list[Outgoing] = []
        if lost:  # values sampled before the loss but published after the DDEATH: birth, data, death
            out += self.node.add_device(device, self._specs[device])
        try:
            out += self.node.update_wire(device, items, historical=sent < self._since_us)
        except PayloadError as err:
            self.rejected += 1
            log.error("sparkplug_values_unencodable", device_id=device, row_id=row.id, error=str(err))
        except (KeyError, TypeError, AttributeError) as err:
            self._unreadable(row, err)
            return None
        if lost:
            out += self.node.device_lost(device)
        return self._send(client, out)

    def _unreadable(self, row: OutboxRow, err: Exception) -> None:
        """A row that is not a data batch of this gateway's: counted, logged, never blocking the pump."""
        self.rejected += 1
        log.error("sparkplug_row_unreadable", device_id=row.device, row_id=row.id, error=repr(err))

    def _ensure_metrics(self, device: str, items: list[dict[str, Any]]) -> None:
        """Values of a device (or tag) with no meta yet: add the metric, typed by its value, and rebirth."""
        types = self._types.get(device)
        if types is not None and all(item["tag"] in types for item in items):
            return
        specs = self._specs.get(device, [])
        known = {spec.name for spec in specs}
        new = {item["tag"]: item["v"] for item in items if item["tag"] not in known}
        if new:
            self._add_metrics(device, specs, new)

    def _add_metrics(self, device: str, specs: list[MetricSpec], new: dict[str, wire.JsonValue]) -> None:
        """The device with `specs` and a metric per `new` tag (typed by its value); a DBIRTH."""
        specs = [*specs, *(MetricSpec(tag, sparkplug_type("", scalar(value))) for tag, value in new.items())]
        self._set_specs(device, specs)
        online = self._online.setdefault(device, True)
        self._publish(self.node.add_device(device, specs, online=online))
        log.info("sparkplug_metrics_without_meta", device_id=device, tags=len(new) or len(specs))

    def _set_specs(self, device: str, specs: list[MetricSpec]) -> None:
        self._specs[device] = specs
        self._types[device] = {spec.name: spec.datatype for spec in specs}

    def _farewell(self) -> tuple[str, bytes]:
        ndeath = self.node.shutdown() or ([self._will] if self._will is not None else [])
        return ndeath[0].topic, ndeath[0].payload

    # --- DCMD writes ------------------------------------------------------------------------

    async def run_writes(self) -> None:
        """Hand DCMD writes to the gateway's command path, one after another, until cancelled."""
        while True:
            write = await self._writes.get()
            await self._write(write)

    async def _write(self, write: WriteRequest) -> None:
        if self.writer is None:
            return
        now = wire.now_us()
        cmd = wire.Command(
            id=f"spb-{uuid.uuid4().hex}",
            op="write",
            device=write.device_id,
            args={"tag": write.metric, "value": to_wire_value(write.datatype, write.value)},
            sent=now,
            expires=now + WRITE_EXPIRY_US,
            user=f"sparkplug:{self.node.group_id}",
        )
        reply = await self.writer(cmd)
        if reply.ok:
            log.info("sparkplug_write_done", device_id=write.device_id, tag=write.metric)
        else:
            self.rejected += 1
            log.warning(
                "sparkplug_write_failed",
                device_id=write.device_id,
                tag=write.metric,
                code=reply.code,
                error=reply.error,
            )
