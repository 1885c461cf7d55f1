"""One OPC UA device: a session loop (connect, browse, subscribe, reconnect) and a batch flusher.

Notifications come through asyncua's `async for` subscription iterator, decoded by
`ua_publish_decode` into one event per publish response whose values are rows (a few µs per value
instead of ~15 µs through asyncua's own objects and one event per value). The consumer only
converts and appends to `pending`; the flusher hands `pending` to the outbox every publishing
interval, or sooner when a batch is full. The flusher outlives OPC UA connections, so values
received just before a connection dropped are still stored, and nothing is ever invented while
the device is unreachable: its status says so instead.

Two levels of reconnection. A short loss of the connection (a frozen link, a stalled device, a TCP
reset) is handled by asyncua's supervisor: it opens a new secure channel, re-activates the *same*
session and transfers the *same* subscription (republishing what was missed), so the server's
monitored-item queues survive and nothing is lost. A stall shorter than `stall_timeout_s` is not a
loss at all: the watchdog and request timeouts fit it. Only when the server lost the session (it
restarted, or the outage outlived the session timeout) does this loop start over: outage markers
stamped with the gateway's clock at the time of loss, a fresh connect with re-browse and new meta,
and every tag's current value re-sent with the receive time so it reads Good after the marker.
Permanent refusals (security, certificate, identity) retry slowly; the rest fast.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy, StatusChangeEvent

from plantwire import wire
from plantwire.logs import get_logger

from .backoff import Backoff
from .browse import BrowseError, Tag, browse_tags
from .history_backfill import Gap, read_gaps
from .northbound import RetainedSink
from .opcua_connect import ConnectFailure, classify, make_client
from .pki import Pki
from .server_profile import ServerProfile, batched, clock_watch, read_profile
from .session_resume import ResumePaths, SavedSubscription, adopt, leave_open, resumed
from .session_watch import SessionWatch, subscription_parameters
from .settings import DeviceConfig
from .stats import GatewayStats
from .structures import load_structures
from .ua_publish_decode import CompactBatch, Row, deliver_compact, filetime_us
from .ua_publish_decode import install as install_publish_decoder
from .ua_values import to_us, to_wire_value

__all__ = ["DeviceSession", "Store", "to_us", "to_wire_value"]

log = get_logger(__name__)

BATCH_MAX: Final = min(2000, wire.MAX_VALUES_PER_MESSAGE)
MAX_PENDING: Final = 20 * BATCH_MAX
"""The consumer waits for the flusher beyond this many unflushed values (then the OPC UA side queues)."""
FAST_PUBLISH_DECODE: Final = install_publish_decoder()
"""PublishResponses are decoded by `ua_publish_decode` (False: asyncua is not the pinned version)."""
EVENT_QUEUE: Final = 50_000
"""asyncua's iterator queue: notification messages (one per publish response with the fast decoder),
values otherwise. On overflow the session reconnects (loud) rather than drop silently."""
_LOSS_GRACE: Final = 2.0
_REQUEST_TIMEOUT: Final = 5.0
_DISCONNECT_TIMEOUT: Final = 2.0
_CLOCK_REPORT_MS: Final = 100.0
"""A clock offset that moved by more than this is published in a new status."""

Store = Callable[[str, list[wire.Sample]], Awaitable[None]]
"""Appends one device's samples to the outbox (split into messages there)."""

_RECOVERABLE = (OSError, TimeoutError, ua.UaError, ConnectionError, BrowseError, ConnectFailure)
PERMANENT_MAX_DELAY: Final = 300.0
"""Cap of the backoff after a permanent refusal (security, certificate, identity)."""
_PERMANENT_BASE: Final = 5.0
_TRUST_POLL: Final = 1.0
RESUME_WINDOW: Final = 60.0
"""How long asyncua may try to resume the session before this loop starts over."""


class DeviceSession:
    """Keeps one device subscribed and its values flowing into `store`."""

    def __init__(
        self,
        device: DeviceConfig,
        gateway_id: str,
        link: RetainedSink,
        store: Store,
        stats: GatewayStats,
        reconnect_max_delay: float = 3.0,
        pki: Pki | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.device = device
        self.pki = pki or Pki(Path("var/gateway"))
        self.resume = ResumePaths.of(state_dir, device.id) if state_dir is not None else None
        """Where the session and subscription are kept for a resume after a gateway restart."""
        self.link = link
        self.store = store
        self.stats = stats
        self.reconnect_max_delay = reconnect_max_delay
        self.pending: list[wire.Sample] = []
        self.tags: list[Tag] = []
        self._status_topic = wire.device_topic(gateway_id, device.id, "status")
        self._meta_topic = wire.device_topic(gateway_id, device.id, "meta")
        self._flush_now = asyncio.Event()
        self._drained = asyncio.Event()
        self._state: wire.DeviceState | None = None
        self._error: str | None = None
        self._last_ts = 0
        """Newest source timestamp handed to the store, so an outage marker never reuses one."""
        self._marker_ts: int | None = None
        self.clock_offset_ms: float | None = None
        """The device's clock minus the gateway's (server CurrentTime), shown in its status."""
        self._lost_at: int | None = None
        """Gateway time the connection was lost (the outage marker's timestamp)."""
        self._resend: set[int] = set()
        self._outage_ts: int | None = None
        """Timestamp of the markers of the current outage (None: not marked); tags reading older re-sent."""
        self._newest: dict[int, int] = {}
        """Newest source timestamp received per client handle (to know which tags to re-send)."""
        self._mark_timer: asyncio.TimerHandle | None = None
        self._last_loss_at: int | None = None
        self._recreated = False
        self._adopted = False
        """This session adopted the subscription a gateway restart left open (its queues hold the gap)."""
        self._client: Client | None = None
        self._background: set[asyncio.Task[None]] = set()
        """Client handles whose first value after a re-subscribe is still awaited."""
        self.failure: ConnectFailure | None = None
        self._log = log.bind(device_id=device.id, endpoint=device.endpoint)

    # --- status -----------------------------------------------------------------------------

    def _set_status(self, state: wire.DeviceState, error: str | None = None) -> None:
        if (state, error) == (self._state, self._error):
            return
        self._state, self._error = state, error
        self.stats.device_states[self.device.id] = state
        status = wire.DeviceStatus(
            state=state,
            since=wire.now_us(),
            endpoint=self.device.endpoint,
            error=error,
            clock_offset_ms=self.clock_offset_ms,
        )
        self.link.publish_retained(self._status_topic, wire.encode_device_status(status))

    def _clock_measured(self, offset_us: int | None) -> None:
        offset = round(offset_us / 1000, 1) if offset_us is not None else None
        previous = self.clock_offset_ms
        self.clock_offset_ms = offset
        moved = (offset is None) != (previous is None) or (
            offset is not None and previous is not None and abs(offset - previous) > _CLOCK_REPORT_MS
        )
        if moved and self._state == "online":  # otherwise the coming "online" status carries it
            self._state = None
            self._set_status("online", self._error)
        if moved and offset is not None:
            self._log.info("device_clock_offset", offset_ms=offset, timestamp=self.device.timestamp)

    # --- the flusher ------------------------------------------------------------------------

    def take_pending(self) -> list[wire.Sample]:
        batch, self.pending = self.pending, []
        self._drained.set()
        if batch:
            newest = max(s.ts for s in batch)
            if self._marker_ts is not None:
                self._check_marker_collision(batch)
            self._last_ts = max(self._last_ts, newest)
        return batch

    # --- outage markers ---------------------------------------------------------------------

    def mark_outage(self) -> None:
        """The session was lost: one null, BadNoCommunication sample per tag, never an invented value.

        Stamped with the gateway's clock at the time the loss was detected (never a device's clock:
        one tag running ahead must not push the marker into the future of every other tag). The
        first value of every tag after the re-subscribe is re-sent with its receive time, so a tag
        that did not change reads Good again instead of staying behind the marker.
        """
        tags = [t.info.tag for t in self.tags]
        if not tags:
            return
        if self._outage_ts is not None:
            return  # this outage is marked already (the link was down long enough)
        ts = self._lost_at or wire.now_us()
        self._outage_ts = ts
        bad = wire.STATUS_BAD_NO_COMMUNICATION
        self.pending.extend(wire.Sample(tag, ts, None, bad) for tag in tags)
        self._marker_ts = ts
        self.stats.outage_markers += len(tags)
        self._flush_now.set()
        self._log.info("device_outage_marked", tags=len(tags), ts=ts)

    def _check_marker_collision(self, batch: list[wire.Sample]) -> None:
        """A device value stamped exactly at the marker's microsecond (clock skew) would be ignored."""
        marker = self._marker_ts
        real = [s for s in batch if s.status != wire.STATUS_BAD_NO_COMMUNICATION or s.value is not None]
        if any(s.ts == marker for s in real):
            self._log.warning("outage_marker_collision", ts=marker)
        if any(s.ts > marker for s in real):  # type: ignore[operator]  # only called while a marker is set
            self._marker_ts = None

    async def flush_loop(self) -> None:
        """Hand pending values to the store every publishing interval, or as soon as a batch is full."""
        interval = self.device.publishing_interval_ms / 1000
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._flush_now.wait()
            self._flush_now.clear()
            batch = self.take_pending()
            if batch:
                await self.store(self.device.id, batch)

    # --- the session loop -------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, browse, subscribe, consume; on any loss report it and try again, forever."""
        fast = Backoff(self.reconnect_max_delay)
        slow = Backoff(PERMANENT_MAX_DELAY, base=_PERMANENT_BASE)
        self._set_status("connecting")
        while True:
            connected = False

            def online() -> None:
                nonlocal connected
                connected = True
                fast.reset()
                slow.reset()
                self.failure = None

            try:
                await self._session(online)
            except _RECOVERABLE as err:
                failure = classify(err, self.device, self.pki)
            except Exception as err:  # the task's root: a bug must not stop the other devices
                self._log.exception("device_session_crashed")
                failure = ConnectFailure("error", f"internal error: {type(err).__name__}")
            error = str(failure)
            self.failure = failure
            if connected or error != self._error:  # a repeated failure is not news
                event = "device_disconnected" if connected else "device_connect_failed"
                self._log.warning(event, code=failure.code, error=error)
            if connected:
                self.stats.device_reconnects += 1
                if self._lost_at is None:  # a new loss (not one the link watch has seen already)
                    self._outage_ts = None
                self.mark_outage()
            self._lost_at = None
            self._cancel_mark_timer()
            self._set_status("offline", error)
            delay = slow.next() if failure.permanent else fast.next()
            self._log.info("device_reconnecting", code=failure.code, retry_in=round(delay, 2))
            await self._sleep_or_trust_change(delay)

    async def _sleep_or_trust_change(self, delay: float) -> None:
        """Wait `delay`, but retry at once when the trust list changes (someone ran `pki trust`)."""
        before = await asyncio.to_thread(self.pki.trust_changed_at)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(left, _TRUST_POLL))
            if await asyncio.to_thread(self.pki.trust_changed_at) != before:
                return

    async def _session(self, online: Callable[[], None]) -> None:
        """One session: calls `online()` once subscribed, raises when the server lost the session."""
        paths = self.resume
        token_before = await asyncio.to_thread(paths.saved_token) if paths is not None else None
        client = await make_client(self.device, self.pki, "", paths.session if paths is not None else None)
        lost = asyncio.Event()
        watch = SessionWatch(
            self._on_link_down, self._on_link_up, lambda: self._on_recreated(lost), lost, RESUME_WINDOW
        )
        client.uaclient.observer = watch
        try:
            await client.connect(
                auto_reconnect=True,
                reconnect_max_delay=min(self.reconnect_max_delay, 1.0),
                reconnect_request_timeout=self.device.stall_timeout_s,
            )
        except BaseException:
            client.disconnect_socket()
            raise
        keep_session = False
        gap_from = self._newest_by_tag() if self._outage_ts is not None else {}
        try:
            profile = await read_profile(client)
            self._clock_measured(profile.clock_offset_us)
            await load_structures(client, self.device.id)
            root, tags = await browse_tags(client, self.device, profile)
            self.tags = tags
            meta = wire.DeviceMeta(
                endpoint=self.device.endpoint, root=root.to_string(), tags=[t.info for t in tags]
            )
            self.link.publish_retained(self._meta_topic, wire.encode_meta(meta))
            sub, by_handle = await self._subscribe(client, tags, token_before, profile)
            if gap_from and self.device.history_backfill and not self._adopted:
                self._start_backfill(client, tags, gap_from, profile)
            self._client, self._recreated = client, False
            watch.subscribed = True
            self._set_status("online")
            self._log.info("device_connected", tags=len(tags), security=self.device.security_policy)
            online()
            async with clock_watch(client, profile, self._clock_measured):
                reason = await self._consume_until_lost(sub, by_handle, lost)
            raise ConnectionError(reason)
        except asyncio.CancelledError:
            keep_session = self.resume is not None  # a gateway stop: the restart picks the session up
            raise
        finally:
            self._client = None
            self._cancel_mark_timer()
            await watch.close()
            if keep_session:
                await leave_open(client)
            else:
                await self._close(client)
                if paths is not None:
                    await asyncio.to_thread(paths.forget)

    async def _subscribe(
        self, client: Client, tags: list[Tag], token_before: str | None, profile: ServerProfile
    ) -> tuple[Any, dict[int, str]]:
        """Adopt the subscription a resumed session still has, or create one (and remember it)."""
        params = subscription_parameters(self.device, client.session_timeout)
        paths = self.resume
        saved = (
            paths.load(self.device.endpoint) if paths is not None and resumed(client, token_before) else None
        )
        self._adopted = saved is not None
        if saved is not None:
            sub = adopt(client, saved, params, EVENT_QUEUE, self.device.queue_size)
            self._log.info("device_subscription_adopted", subscription_id=saved.subscription_id)
            self.stats.sessions_resumed += 1
            return sub, {handle: tag for handle, _, tag, _ in saved.items}
        sub = await client.create_subscription(
            params, handler=None, queue_maxsize=EVENT_QUEUE, overflow=OverflowPolicy.DISCONNECT
        )
        by_handle = {handle: t.info.tag for handle, t in enumerate(tags, start=1)}
        if self._outage_ts is not None:
            self._resend = set(by_handle)
        items: list[tuple[int, int, str, str]] = []
        if tags:
            results = await batched(
                self._monitor_requests(tags), profile.limits.monitored_items, sub.create_monitored_items
            )
            pairs = list(zip(tags, results, strict=True))
            failed = [t.info.tag for t, r in pairs if isinstance(r, ua.StatusCode)]
            if failed:
                self._log.warning("tags_not_subscribed", count=len(failed), first=failed[:5])
            items = [
                (handle, int(r), t.info.tag, t.node_id.to_string())
                for handle, (t, r) in enumerate(pairs, start=1)
                if not isinstance(r, ua.StatusCode)
            ]
        if paths is not None and sub.subscription_id is not None:
            saved = SavedSubscription(self.device.endpoint, sub.subscription_id, items)
            await asyncio.to_thread(paths.save, saved)
        return sub, by_handle

    def _newest_by_tag(self) -> dict[str, int]:
        """The newest timestamp received per tag name in the session that was lost."""
        return {t.info.tag: self._newest[h] for h, t in enumerate(self.tags, start=1) if h in self._newest}

    def _start_backfill(
        self, client: Client, tags: list[Tag], gap_from: dict[str, int], profile: ServerProfile
    ) -> None:
        """Read what the lost session missed from the server's history, in the background."""
        until = wire.now_us()  # the new subscription exists: it delivers what comes after
        gaps = [
            Gap(t.info.tag, t.node_id, gap_from[t.info.tag], until)
            for t in tags
            if gap_from.get(t.info.tag, until) < until
        ]
        if gaps:
            task = asyncio.create_task(self._backfill(client, gaps, profile.limits.history_read))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _backfill(self, client: Client, gaps: list[Gap], batch: int) -> None:
        try:
            result = await read_gaps(client, gaps, batch, self.device.timestamp)
        except _RECOVERABLE as err:
            self._log.warning("device_backfill_failed", error=str(err) or type(err).__name__)
            return
        self.stats.backfill_unsupported += result.unsupported
        self.stats.values_backfilled += len(result.samples)
        self._log.info(
            "device_backfilled",
            tags=len(gaps),
            values=len(result.samples),
            unsupported=result.unsupported,
            truncated=result.truncated,
        )
        for start in range(0, len(result.samples), BATCH_MAX):
            self.pending.extend(result.samples[start : start + BATCH_MAX])
            self._flush_now.set()
            if len(self.pending) >= MAX_PENDING:
                self._drained.clear()
                await self._drained.wait()

    def _on_link_down(self) -> None:
        """asyncua lost the connection and is resuming the session: offline until it is back.

        Still down after `stall_timeout_s`: the outage is marked (at the time of loss), so the
        platform shows it while asyncua keeps trying; a resume before that marks nothing.
        """
        if self._lost_at is None:
            self._lost_at = self._last_loss_at = wire.now_us()
            self._outage_ts = None
        self._set_status("offline", "unreachable: connection lost; resuming the session")
        self._log.warning("device_link_down")
        self._cancel_mark_timer()
        self._mark_timer = asyncio.get_running_loop().call_later(
            self.device.stall_timeout_s, self.mark_outage
        )

    def _on_link_up(self) -> None:
        self._lost_at = None
        self._cancel_mark_timer()
        self.stats.sessions_resumed += 1
        self._set_status("online")
        self._log.info("device_session_resumed")
        if self._outage_ts is not None and self._client is not None:
            task = asyncio.create_task(self._resend_after_resume(self._client, self._outage_ts))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _on_recreated(self, lost: asyncio.Event) -> None:
        """The server had lost the session (it restarted): what it queued is gone.

        The outage is marked at the time of loss (once), and the session starts over at once
        (re-browse, new meta, a new subscription whose first values count from then on); the
        subscription asyncua re-created is not consumed.
        """
        self.stats.sessions_resumed -= 1  # counted when the link came back, but this one lost the queue
        self._recreated = True
        if self._outage_ts is None:
            self._lost_at = self._lost_at or self._last_loss_at
            self.mark_outage()
        self._lost_at = self._lost_at or self._last_loss_at
        for task in list(self._background):
            task.cancel()
        self._log.warning("device_session_recreated", hint="values queued on the server were lost")
        lost.set()

    def _cancel_mark_timer(self) -> None:
        if self._mark_timer is not None:
            self._mark_timer.cancel()
            self._mark_timer = None

    async def _resend_after_resume(self, client: Client, marker: int) -> None:
        """After a resume that followed markers: tags with nothing newer than the marker read again."""
        await asyncio.sleep(3 * self.device.publishing_interval_ms / 1000)  # the republished backlog first
        stale = [(h, t) for h, t in enumerate(self.tags, start=1) if self._newest.get(h, 0) <= marker]
        if not stale:
            return
        try:
            params = ua.ReadParameters()
            params.NodesToRead = [
                ua.ReadValueId(NodeId=t.node_id, AttributeId=ua.AttributeIds.Value) for _, t in stale
            ]
            values = await client.uaclient.read(params)
        except _RECOVERABLE as err:
            self._log.warning("device_resend_read_failed", error=str(err) or type(err).__name__)
            return
        now = max(wire.now_us(), marker + 1)
        for (_, tag), dv in zip(stale, values, strict=True):
            value = dv.Value.Value if dv.Value is not None else None
            status = dv.StatusCode.value if dv.StatusCode is not None else wire.STATUS_GOOD
            self.pending.append(wire.Sample(tag.info.tag, now, to_wire_value(value), status))
        self.stats.values_resent += len(stale)
        self._flush_now.set()

    def _monitor_requests(self, tags: list[Tag]) -> list[ua.MonitoredItemCreateRequest]:
        """One monitored item per tag; client handle = position + 1, so a notification maps to its tag."""
        trigger = ua.DataChangeTrigger.StatusValueTimestamp if self.device.every_write else None
        requests = []
        for handle, tag in enumerate(tags, start=1):
            params = ua.MonitoringParameters(
                ClientHandle=handle,
                SamplingInterval=self.device.sampling_interval_ms,
                QueueSize=self.device.queue_size,
                DiscardOldest=True,
            )
            if trigger is not None:
                params.Filter = ua.DataChangeFilter(Trigger=trigger)
            requests.append(
                ua.MonitoredItemCreateRequest(
                    ItemToMonitor=ua.ReadValueId(NodeId=tag.node_id, AttributeId=ua.AttributeIds.Value),
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=params,
                )
            )
        return requests

    async def _consume_until_lost(self, sub: Any, by_handle: dict[int, str], lost: asyncio.Event) -> str:
        """Consume notifications until the subscription reports a bad status or the connection drops.

        Notifications already queued when the connection dropped are consumed first (asyncua puts
        the BadShutdown status after them); the watchdog only ends a consumer that never sees it.
        """
        reason = "connection lost"
        async with asyncio.TaskGroup() as tg:
            consumer = tg.create_task(self._consume(sub, by_handle))

            async def watchdog() -> None:
                await lost.wait()
                if not self._recreated:  # a re-created subscription is not consumed at all
                    await asyncio.wait([consumer], timeout=_LOSS_GRACE)
                consumer.cancel()

            watch = tg.create_task(watchdog())
            consumer.add_done_callback(lambda _: watch.cancel())
        if not consumer.cancelled():
            reason = consumer.result()
        return reason

    async def _consume(self, sub: Any, by_handle: dict[int, str]) -> str:
        if FAST_PUBLISH_DECODE:
            deliver_compact(sub)  # one event per notification message, its values as rows
        events = aiter(sub)
        # asyncua queues a publish response's notifications all at once: an empty queue means this
        # response is consumed, so its values go out now instead of waiting for the timer.
        # (`_event_queue` is asyncua 2.1.0's, which is pinned; the timer still flushes without it.)
        queue = getattr(sub, "_event_queue", None)
        async for event in events:
            kind = type(event)
            if kind is CompactBatch:
                self._take_rows(event.rows, by_handle)
            elif kind is DataChangeEvent:
                self._take_item(event.data.monitored_item, by_handle)
            elif isinstance(event, StatusChangeEvent):
                code = event.notification.Status
                if code is not None and not code.is_good():
                    return f"subscription status {code.name}"
                continue
            else:
                continue
            if len(self.pending) >= BATCH_MAX or (queue is not None and queue.empty()):
                self._flush_now.set()
                if len(self.pending) >= MAX_PENDING:
                    self._drained.clear()
                    await self._drained.wait()
        return "subscription closed"

    def _take_rows(self, rows: list[Row | ua.MonitoredItemNotification], by_handle: dict[int, str]) -> None:
        """A notification's values decoded as rows (`ua_publish_decode`): the hot path, per value."""
        Sample = wire.Sample
        mode = self.device.timestamp
        source, gateway = mode == "source", mode == "gateway"
        newest = self._newest
        append = self.pending.append
        taken = 0
        for row in rows:
            if not isinstance(row, tuple):
                self._take_item(row, by_handle)  # a shape asyncua decoded (an array, a structure)
                continue
            handle, value, status, src, srv, _ = row
            tag = by_handle.get(handle)
            if tag is None:
                continue
            if gateway:
                filetime = None
            elif source:
                filetime = src if src is not None else srv
            else:
                filetime = srv if srv is not None else src
            us = filetime_us(filetime) if filetime is not None else -1
            sample = Sample(
                tag,
                us if us >= 0 else wire.now_us(),  # an unset clock (before 1970): arrival time
                value if type(value) is float else to_wire_value(value),
                status,
            )
            append(sample)
            taken += 1
            newest[handle] = sample.ts
            if self._resend:
                self._resend_current(handle, sample)
        self.stats.values_in += taken

    def _take_item(self, item: ua.MonitoredItemNotification, by_handle: dict[int, str]) -> None:
        """One value as asyncua decoded it."""
        tag = by_handle.get(item.ClientHandle)
        if tag is None:
            return
        dv = item.Value
        mode = self.device.timestamp
        if mode == "gateway":
            ts = None
        elif mode == "source":
            ts = dv.SourceTimestamp or dv.ServerTimestamp
        else:
            ts = dv.ServerTimestamp or dv.SourceTimestamp
        status = dv.StatusCode
        us = to_us(ts) if ts is not None else -1
        value = dv.Value.Value if dv.Value is not None else None
        sample = wire.Sample(
            tag,
            us if us >= 0 else wire.now_us(),  # an unset clock (before 1970): arrival time
            to_wire_value(value),
            status.value if status is not None else wire.STATUS_GOOD,
        )
        self.pending.append(sample)
        self.stats.values_in += 1
        self._newest[item.ClientHandle] = sample.ts
        if self._resend:
            self._resend_current(item.ClientHandle, sample)

    def _resend_current(self, handle: int, sample: wire.Sample) -> None:
        """A tag's first value after a re-subscribe, if older than the marker, again at receive time."""
        if handle not in self._resend:
            return
        self._resend.discard(handle)
        marker = self._outage_ts
        if marker is not None and sample.ts <= marker:
            ts = max(wire.now_us(), marker + 1)
            self.pending.append(wire.Sample(sample.tag, ts, sample.value, sample.status))
            self._newest[handle] = ts
            self.stats.values_resent += 1

    async def _close(self, client: Client) -> None:
        """Close the session; on a dead connection just tear the transport down."""
        try:
            async with asyncio.timeout(_DISCONNECT_TIMEOUT):
                await client.disconnect()
        except (*_RECOVERABLE, RuntimeError) as err:
            self._log.debug("device_disconnect_error", error=str(err))
            client.disconnect_socket()
