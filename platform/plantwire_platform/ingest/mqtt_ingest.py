"""MQTT ingest: wire messages in, committed store writes out, acknowledgements only after commit.

The zero-loss promise rests on three things:

- a persistent MQTT session (fixed client id, clean_session=False): while the platform is away,
  the broker keeps its QoS 1 messages (our Mosquitto config removes the queue caps);
- manual acknowledgement: a data message is acknowledged only after the transaction holding its
  points has committed, so a crash before commit means the broker delivers it again;
- idempotent writes: the store ignores points it already has, so redelivery never duplicates.

Threads: paho's network thread decodes and puts messages into a bounded queue (a blocking put
when it is full is the backpressure: the broker keeps the rest); one writer thread
(`ack_after_commit.AckAfterCommitWriter`, shared with the Sparkplug host) groups data messages into
commits of up to `commit_interval_ms` / `max_batch_points`, then acknowledges them. Consecutive
meta and status messages share commits the same way (`MAX_REGISTRATIONS`, `MAX_REGISTRATION_ROWS`:
`Catalog.apply_registrations`), so the retained state of 100,000 devices that a broker hands a
starting platform costs hundreds of commits, not 100,000 (docs/scaling.md); a message of the other
kind commits the group before it first, so data always finds the meta that came before it applied.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from plantwire import wire
from plantwire.logs import get_logger
from plantwire.metrics_text import SECONDS_BOUNDS, Histogram, MetricsText
from plantwire.mqtt_control import disable_nagle, new_client
from plantwire_platform.ingest.ack_after_commit import AckAfterCommitWriter
from plantwire_platform.ingest.ownership import DeviceOwners
from plantwire_platform.ingest.sample_window import WINDOW_REASONS, in_window
from plantwire_platform.ingest.stats import IngestStats, LatencyHistogram, RateLimitedWarning
from plantwire_platform.settings import PlatformSettings
from plantwire_platform.store.model import IncomingBatch, Registration, Store

log = get_logger(__name__)

RejectReason = Literal["topic", "json", "oversized", "schema"]
REJECT_REASONS: Final[tuple[RejectReason, ...]] = ("topic", "json", "oversized", "schema")
Body = wire.DataBatch | wire.DeviceMeta | wire.DeviceStatus | wire.GatewayStatus
CommittedCallback = Callable[[Sequence[IncomingBatch]], None]
MAX_REGISTRATIONS: Final = 1000
"""Meta and status messages one commit takes at most: the broker's in-flight window (Mosquitto's
`max_inflight_messages`, 1,000 in our configs) holds no more unacknowledged ones anyway. Smaller
groups, so that paho decodes the next ones while one commits, were not faster: 250 took 7-15% longer
in two pairs of runs of bench/registrations.py (10,000 devices, SQLite and PostgreSQL)."""
MAX_REGISTRATION_ROWS: Final = 5000
"""Rows (a device or gateway row, plus a meta's tags) one such commit writes at most (metas of
many tags): a few tens of ms of SQLite or PostgreSQL work."""


def subscription_filters(shared_group: str | None) -> tuple[str, ...]:
    """The platform's topic filters; with a group, data comes through a shared subscription.

    Workers of one group (`$share/<group>/...`) each get a share of the data messages, with the same
    manual acks; meta and status stay per worker (every worker keeps the registry up to date).
    """
    if shared_group is None:
        return wire.SUBSCRIPTIONS
    return tuple(f"$share/{shared_group}/{f}" if f.endswith("/data") else f for f in wire.SUBSCRIPTIONS)


class MessageRejected(Exception):
    """A message that does not follow the wire contract; `reason` is one of REJECT_REASONS."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Decoded:
    topic: wire.Topic
    body: Body


def decode_message(topic: str, payload: bytes) -> Decoded:
    """Parse a topic and its payload with the wire contract, classifying any rejection."""
    try:
        parsed = wire.parse_topic(topic)
    except wire.WireError as err:
        raise MessageRejected("topic", str(err)) from err
    if len(payload) > wire.MAX_PAYLOAD_BYTES:
        raise MessageRejected("oversized", f"{len(payload)} bytes; the limit is {wire.MAX_PAYLOAD_BYTES}")
    try:
        body: Body
        if parsed.kind == "data":
            # Arrays and structures as lists and dicts: the stores keep them as JSON (store/value_shapes.py).
            body = wire.decode_data(payload, compound="native")
        elif parsed.kind == "meta":
            body = wire.decode_meta(payload)
        elif parsed.device is None:
            body = wire.decode_gateway_status(payload)
        else:
            body = wire.decode_device_status(payload)
    except wire.WireError as err:
        reason: RejectReason = "json" if isinstance(err.__cause__, orjson.JSONDecodeError) else "schema"
        raise MessageRejected(reason, str(err)) from err
    return Decoded(parsed, body)


class MqttIngest:
    """Subscribes to every gateway's topics and writes what arrives into the store.

    ``async with MqttIngest(settings, store, on_committed) as ingest:`` runs it; leaving the block
    commits and acknowledges what was taken and disconnects. `on_committed` is called from the
    writer thread after each commit (cross into asyncio with `loop.call_soon_threadsafe`).
    """

    def __init__(
        self,
        settings: PlatformSettings,
        store: Store,
        on_committed: CommittedCallback | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._on_committed = on_committed
        self._subscribed = threading.Event()
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = False
        self._subscribe_mid: int | None = None
        self._filters = subscription_filters(settings.ingest.shared_group)
        self._client = self._make_client()
        self._writer: AckAfterCommitWriter[Decoded | None] = AckAfterCommitWriter(
            name="plantwire-ingest-writer",
            client=self._client,
            queue_max=settings.store.queue_max_messages,
            commit_interval_s=settings.store.commit_interval_ms / 1000,
            max_points=settings.store.max_batch_points,
            points=_points,
            commit=self._commit,
            registration_rows=_registration_rows,
            max_registration_rows=MAX_REGISTRATION_ROWS,
            max_registrations=MAX_REGISTRATIONS,
        )
        self._latency = LatencyHistogram()
        self._rejects = RateLimitedWarning(__name__, "mqtt_message_rejected")
        self._refused = RateLimitedWarning(__name__, "ingest_message_refused")
        self.owners = DeviceOwners(store)
        """Device ownership (the API's device move tells it with `owners.moved`)."""
        self._max_future_us = int(settings.ingest.max_future_s * 1_000_000)
        # Counters: each written by one thread only (paho's or the writer's), read by anyone.
        self._messages = 0
        self._decode_errors = dict.fromkeys(REJECT_REASONS, 0)
        self._points_stored = 0
        self._duplicates = 0
        self._seq_gaps = 0
        self._seq_jumps = 0
        self._ownership_rejected = dict.fromkeys(("data", "meta", "status"), 0)
        self._values_rejected: dict[str, int] = dict.fromkeys(WINDOW_REASONS, 0)
        self._commits = 0
        self._registrations = 0
        self._registration_commits = 0
        self._last_commit_ms: float | None = None
        self._connects = 0
        self._reader_crashed = False
        self.commit_seconds = Histogram(SECONDS_BOUNDS)
        """Store write time per commit (the writer thread observes, /metrics reads)."""

    # --- lifecycle -------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        s = self._settings
        client = new_client(s.mqtt, s.client_id, clean_session=False, manual_ack=True)
        client.reconnect_delay_set(min_delay=0.2, max_delay=s.mqtt.reconnect_max_delay)  # type: ignore[arg-type]  # paho says int; it sleeps floats
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    async def __aenter__(self) -> MqttIngest:
        mqtt_settings = self._settings.mqtt
        self._loop = asyncio.get_running_loop()
        self._writer.start()
        # connect_async + loop_start: paho's thread connects and keeps reconnecting with backoff,
        # so a broker that is not up yet delays ingest instead of failing the platform.
        self._client.connect_async(mqtt_settings.host, mqtt_settings.port, keepalive=mqtt_settings.keepalive)
        self._client.loop_start()
        log.info(
            "ingest_started",
            host=mqtt_settings.host,
            port=mqtt_settings.port,
            client_id=self._settings.client_id,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        """Stop taking messages, commit and acknowledge what was taken, disconnect, join threads."""
        self._writer.stop()
        self._client.disconnect()
        self._client.loop_stop()
        self._connected = False
        log.info("ingest_stopped", messages=self._messages, points_stored=self._points_stored)

    async def wait_subscribed(self) -> None:
        """Return once the broker has confirmed our subscriptions on the current connection."""
        await self._ready.wait()

    def _set_ready(self, ready: bool) -> None:
        """Mirror the paho thread's subscription state into the event loop's `_ready` event."""
        if self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._ready.set if ready else self._ready.clear)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass

    # --- paho thread -----------------------------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: mqtt.ReasonCode,
        properties: mqtt.Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning("mqtt_connect_refused", reason=str(reason_code))
            return
        disable_nagle(client)
        self._writer.connected()
        self._connects += 1
        self._connected = True
        m = self._settings.mqtt
        log.info("mqtt_connected", host=m.host, port=m.port, session_present=flags.session_present)
        result, mid = client.subscribe([(topic, 1) for topic in self._filters])
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.warning("mqtt_subscribe_failed", error=mqtt.error_string(result))
        self._subscribe_mid = mid

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[mqtt.ReasonCode],
        properties: mqtt.Properties | None,
    ) -> None:
        if mid != self._subscribe_mid:
            return
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            log.error("mqtt_subscription_refused", reasons=refused)
            return
        log.info("mqtt_subscribed", filters=list(self._filters))
        self._subscribed.set()
        self._set_ready(True)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: mqtt.ReasonCode,
        properties: mqtt.Properties | None,
    ) -> None:
        was_connected, self._connected = self._connected, False
        self._subscribed.clear()
        self._set_ready(False)
        if was_connected:
            log.info("mqtt_disconnected", reason=str(reason_code), stopping=self._writer.stopping)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._take(msg)
        except BaseException:
            # paho's network thread dies with this exception: no more messages until a restart.
            self._reader_crashed = True
            log.exception("ingest_reader_crashed")
            raise

    def _take(self, msg: mqtt.MQTTMessage) -> None:
        if self._writer.stopping:
            return  # not acknowledged: the broker delivers it again to our next session
        self._messages += 1
        try:
            # paho decodes the topic lazily; a topic that is not UTF-8 raises here.
            topic = msg.topic
        except UnicodeDecodeError:
            self._decode_errors["topic"] += 1
            self._rejects.warn("topic", topic="<not UTF-8>", problem="topic is not UTF-8")
            topic = None
        decoded: Decoded | None = None
        if topic is not None:
            try:
                # An empty retained meta deletes it (a detached device): nothing to store, not an error.
                empty_meta = not msg.payload and topic.endswith("/meta")
                decoded = None if empty_meta else decode_message(topic, bytes(msg.payload))
            except MessageRejected as err:
                self._decode_errors[err.reason] += 1
                self._rejects.warn(err.reason, topic=topic, problem=str(err))
        # Blocking put: while the writer is behind, paho stops reading and the broker holds the rest.
        self._writer.offer(decoded, msg.mid, msg.qos)

    # --- writer thread ---------------------------------------------------------------------------

    def _commit(self, values: list[Decoded | None]) -> bool:
        """Store one group: data messages, or meta/status messages (the writer never mixes them:
        a change of kind commits what came before). False: abandoned, none acknowledged."""
        decoded_values = [d for d in values if d is not None]  # None: rejected or an empty meta
        if not self._claim(decoded_values):
            return False
        batches: list[IncomingBatch] = []
        registrations: list[Registration] = []
        for decoded in decoded_values:
            owned = self._owned(decoded)
            if owned is None:
                return False  # abandoned while the store failed: leave them unacknowledged
            if not owned:
                continue  # refused: acknowledged with the others, never stored
            topic, body = decoded.topic, decoded.body
            if isinstance(body, wire.DataBatch):
                assert topic.device is not None
                body = self._windowed(decoded)
                batches.append(IncomingBatch(topic.gateway, topic.device, body))
            else:
                registrations.append(Registration(topic.gateway, topic.device, body))
        if registrations and not self._register(registrations):
            return False
        if batches and not self._write(batches):
            return False
        if batches and self._on_committed is not None:
            try:
                self._on_committed(batches)
            except Exception:
                log.exception("on_committed_failed")
        return True

    def _claim(self, values: list[Decoded]) -> bool:
        """Claim, in one store call, the devices of the group whose owner is not known yet: the
        first message of a device in the group claims it for its gateway, as one by one would."""
        claims = [(d.topic.gateway, d.topic.device) for d in values if d.topic.device is not None]
        return self._writer.retry("claim_devices", lambda: self.owners.claim_unknown(claims))

    def _owned(self, decoded: Decoded) -> bool | None:
        """Whether the message's gateway owns its device (gateway status: always); None: abandoned."""
        gateway, device = decoded.topic.gateway, decoded.topic.device
        if device is None:
            return True
        allowed = False

        def check() -> None:
            nonlocal allowed
            allowed = self.owners.allows(gateway, device)

        if not self._writer.retry("claim_device", check):
            return None
        if not allowed:
            kind = decoded.topic.kind if decoded.topic.kind in self._ownership_rejected else "status"
            self._ownership_rejected[kind] += 1
            self._refused.warn("not_owner", gateway=gateway, device=device, kind=kind)
        return allowed

    def _windowed(self, decoded: Decoded) -> wire.DataBatch:
        """The batch without values stamped outside the time window (counted and logged)."""
        assert isinstance(decoded.body, wire.DataBatch)
        windowed = in_window(decoded.body, wire.now_us(), self._max_future_us)
        for reason, n in (("future", windowed.future), ("before_2000", windowed.before_2000)):
            if n:
                self._values_rejected[reason] += n
                self._refused.warn(
                    f"value_{reason}", gateway=decoded.topic.gateway, device=decoded.topic.device, values=n
                )
        return windowed.batch

    def _register(self, registrations: list[Registration]) -> bool:
        store = self._store
        if not self._writer.retry("apply_registrations", lambda: store.apply_registrations(registrations)):
            return False
        self._registration_commits += 1
        self._registrations += len(registrations)
        return True

    def _write(self, batches: list[IncomingBatch]) -> bool:
        started = time.perf_counter()
        result = None

        def write() -> None:
            nonlocal result
            result = self._store.write_batches(batches)

        if not self._writer.retry("write_batches", write):
            return False
        assert result is not None
        commit_us = wire.now_us()
        self._commits += 1
        self._last_commit_ms = (time.perf_counter() - started) * 1000
        self.commit_seconds.observe(self._last_commit_ms / 1000)
        self._points_stored += result.stored
        self._duplicates += result.duplicates
        self._seq_gaps += result.seq_gaps
        if result.seq_jumps:
            self._seq_jumps += result.seq_jumps
            self._refused.warn("seq_jump", messages=result.seq_jumps)
        self._latency.add(commit_us, (s.ts for b in batches for s in b.batch.samples))
        return True

    # --- observation -----------------------------------------------------------------------------

    def stats(self) -> IngestStats:
        return IngestStats(
            connected=self._connected,
            subscribed=self._subscribed.is_set(),
            messages=self._messages,
            points_stored=self._points_stored,
            duplicates=self._duplicates,
            seq_gaps=self._seq_gaps,
            seq_jumps=self._seq_jumps,
            decode_errors={reason: n for reason, n in self._decode_errors.items()},
            ownership_rejected=dict(self._ownership_rejected),
            values_rejected=dict(self._values_rejected),
            store_errors=self._writer.store_errors,
            store_failing=self._writer.store_failing,
            queue_depth=self._writer.depth,
            queue_max=self._writer.capacity,
            reconnects=max(self._connects - 1, 0),
            commits=self._commits,
            registrations=self._registrations,
            registration_commits=self._registration_commits,
            last_commit_ms=self._last_commit_ms,
            latency=self._latency.summary(),
            writer_alive=not self._writer.crashed,
            reader_alive=not self._reader_crashed,
        )

    def write_histograms(self, out: MetricsText) -> None:
        """Commit time, and the two latencies: the platform's own share (a message received to its
        commit) and the whole way (a point's source timestamp to its commit, the publisher's
        batching, the network and the broker included)."""
        self.commit_seconds.write(out, "commit_seconds", "Store write time per commit.")
        self._writer.receive_to_commit.write(
            out,
            "receive_to_commit_seconds",
            "Per data message: received from the broker to committed (queue, grouping, commit).",
        )
        self._latency.write(
            out,
            "point_source_to_commit_seconds",
            "Per point: source timestamp to store commit, since start (the quantiles' buckets).",
        )

    def reset_latency(self) -> None:
        self._latency.reset()


def _points(decoded: Decoded | None) -> int | None:
    """A data message joins a commit of data (with its value count)."""
    if decoded is not None and isinstance(decoded.body, wire.DataBatch):
        return len(decoded.body.samples)
    return None


def _registration_rows(decoded: Decoded | None) -> int | None:
    """Anything else joins a commit of meta and status messages, with the rows it writes (a rejected
    message or an empty meta writes none, but counts one: acknowledged with its group)."""
    if decoded is not None and isinstance(decoded.body, wire.DeviceMeta):
        return 1 + len(decoded.body.tags)
    return 1
