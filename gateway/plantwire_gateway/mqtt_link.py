"""The gateway's MQTT side: paho-mqtt driven by the asyncio loop, publishing from the outbox.

Why paho on the event loop (the aiomqtt approach: `add_reader`/`add_writer` call paho's
`loop_read`/`loop_write`) instead of paho's own loop thread: every callback (PUBACK included)
runs on the event loop, so the in-flight map and the outbox cursor need no locks or thread hops,
and a message counts as delivered only when its PUBACK was processed here. Only the blocking
TCP connect runs in a worker thread, before any callback is wired.

Delivery: the pump reads outbox rows in order and publishes them at QoS 1 with at most `window`
unacknowledged (paho's 16-bit message ids and the broker's in-flight limit both need a bound).
A row leaves the outbox only after its PUBACK. Each connection uses a fresh paho client with a
clean session, and after a reconnect the pump starts again from the oldest row still in the
outbox: whatever was unacknowledged is sent again (the platform de-duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from plantwire import __version__, wire
from plantwire.config import MqttSettings
from plantwire.logs import get_logger
from plantwire.mqtt_control import disable_nagle, new_client

from .backoff import Backoff
from .outbox import Outbox, OutboxRow
from .stats import GatewayStats

log = get_logger(__name__)

_MISC_INTERVAL: Final = 1.0
_CONNACK_TIMEOUT: Final = 10.0
_GOODBYE_TIMEOUT: Final = 2.0
DRAIN_TIMEOUT: Final = 2.0
"""Graceful stop: how long to keep publishing the outbox before the goodbye (the rest stays on disk)."""
_RETAINED_SLOTS: Final = 64
"""Extra paho in-flight slots for retained status/meta messages beside the data window."""
ANNOUNCE_WAIT: Final = 5.0
"""How long a new connection holds back the `online` status until the command side is subscribed."""


class MqttConnectError(Exception):
    """The broker refused or did not answer the connection."""


class LoopConnection:
    """One paho client on one TCP connection, wired to the event loop."""

    def __init__(self, client: mqtt.Client, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.connack: asyncio.Future[Any] = loop.create_future()
        self.lost = asyncio.Event()
        self.lost_reason = ""
        self._fd: int | None = None
        self._writing = False

    def attach(self) -> None:
        """Hand the connected socket to the event loop (after the threaded connect returned)."""
        sock = self.client.socket()
        if sock is None:
            raise MqttConnectError("socket closed during connect")
        self._fd = sock.fileno()
        self.client.on_socket_close = self._on_socket_close
        self.client.on_socket_register_write = self._on_register_write
        self.client.on_socket_unregister_write = self._on_unregister_write
        self.loop.add_reader(self._fd, self.client.loop_read)
        if self.client.want_write():
            self._on_register_write(self.client, None, sock)

    def detach(self) -> None:
        if self._fd is not None:
            self.loop.remove_reader(self._fd)
            self.loop.remove_writer(self._fd)
            self._fd = None
            self._writing = False

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self.detach()

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self._fd is not None and not self._writing:
            self._writing = True
            self.loop.add_writer(self._fd, self.client.loop_write)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self._fd is not None and self._writing:
            self._writing = False
            self.loop.remove_writer(self._fd)


class MqttLink:
    """Keeps one MQTT connection up and drains the outbox through it.

    Device sessions call `publish_retained()` for status and meta (latest per topic is kept and
    re-sent on every reconnect) and `notify_data()` after appending to the outbox.
    """

    def __init__(
        self,
        settings: MqttSettings,
        gateway_id: str,
        outbox: Outbox,
        stats: GatewayStats,
        window: int = 200,
    ) -> None:
        self.settings = settings
        self.gateway_id = gateway_id
        self.outbox = outbox
        self.stats = stats
        self.window = window
        self._status_topic = wire.gateway_status_topic(gateway_id)
        self._retained: dict[str, bytes] = {}
        self._conn: LoopConnection | None = None
        self._inflight: dict[int, int] = {}
        """paho message id -> outbox row id, for data messages awaiting PUBACK."""
        self._acked: list[int] = []
        self._wake = asyncio.Event()
        self._data_topics: dict[str, str] = {}
        self.connected = asyncio.Event()
        self.before_goodbye: Callable[[], Awaitable[None]] | None = None
        """Called on a graceful stop before the drain: the gateway moves pending values into the outbox."""
        self.announce_when: asyncio.Event | None = None
        """Set once commands can be received: `online` waits for it (at most `ANNOUNCE_WAIT`), because
        the platform sends commands as soon as it reads `online`, and MQTT drops what arrives before
        the SUBACK."""

    # --- called by the rest of the gateway --------------------------------------------------

    def publish_retained(self, topic: str, payload: bytes) -> None:
        """Publish a retained QoS 1 message now if connected; always again after a reconnect."""
        self._retained[topic] = payload
        conn = self._conn
        if conn is not None and self.connected.is_set():
            info = conn.client.publish(topic, payload, qos=1, retain=True)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                log.warning("mqtt_publish_failed", topic=topic, rc=mqtt.error_string(info.rc))

    def notify_data(self) -> None:
        """New rows are in the outbox."""
        self._wake.set()

    async def store(self, device: str, batches: list[list[wire.Sample]]) -> None:
        """Put a device's batches into this link's outbox (one message each), then publish them."""
        await self.outbox.append(device, batches)
        self.notify_data()

    # --- the connection loop ----------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff; on cancellation say goodbye (status offline)."""
        backoff = Backoff(self.settings.reconnect_max_delay)
        ever_connected = False
        host, port = self.settings.host, self.settings.port
        while True:
            try:
                conn = await self._connect()
            except (OSError, TimeoutError, MqttConnectError) as err:
                delay = backoff.next()
                log.warning(
                    "mqtt_connect_failed",
                    host=host,
                    port=port,
                    error=str(err) or type(err).__name__,
                    retry_in=round(delay, 2),
                )
                await asyncio.sleep(delay)
                continue
            if ever_connected:
                self.stats.mqtt_reconnects += 1
            ever_connected = True
            backoff.reset()
            log.info("mqtt_connected", host=host, port=port, client_id=self._client_id)
            try:
                await self._serve(conn)
            except asyncio.CancelledError:
                await self._goodbye(conn)
                raise
            finally:
                self._drop_connection(conn)
            log.warning("mqtt_disconnected", host=host, port=port, reason=conn.lost_reason)
            await asyncio.sleep(backoff.next())

    @property
    def _client_id(self) -> str:
        return f"plantwire-gw-{self.gateway_id}"

    def _new_client(self) -> mqtt.Client:
        client = new_client(self.settings, self._client_id, clean_session=True, reconnect_on_failure=False)
        offline = wire.GatewayStatus(state="offline", since=wire.now_us(), version=__version__)
        client.will_set(self._status_topic, wire.encode_gateway_status(offline), qos=1, retain=True)
        client.max_inflight_messages_set(self.window + _RETAINED_SLOTS)
        client.max_queued_messages_set(0)
        return client

    async def _connect(self) -> LoopConnection:
        loop = asyncio.get_running_loop()
        client = self._new_client()
        conn = LoopConnection(client, loop)

        def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            if not conn.connack.done():
                conn.connack.set_result(reason)

        def on_disconnect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            conn.lost_reason = str(reason)
            conn.lost.set()
            if not conn.connack.done():
                conn.connack.set_exception(MqttConnectError(f"disconnected before CONNACK: {reason}"))

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = self._on_publish
        # The only blocking step (DNS, TCP connect, sending CONNECT); no callback is wired yet,
        # so paho is touched by exactly one thread at a time.
        s = self.settings
        await asyncio.to_thread(client.connect, s.host, s.port, s.keepalive)
        disable_nagle(client)
        conn.attach()
        try:
            async with asyncio.timeout(_CONNACK_TIMEOUT):
                reason = await conn.connack
        except BaseException:
            self._drop_connection(conn)
            raise
        if reason.is_failure:
            self._drop_connection(conn)
            raise MqttConnectError(f"broker refused the connection: {reason}")
        return conn

    def _drop_connection(self, conn: LoopConnection) -> None:
        self.connected.clear()
        self.stats.mqtt_connected = False
        self._conn = None
        self._inflight.clear()
        conn.detach()
        sock = conn.client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    async def _serve(self, conn: LoopConnection) -> None:
        """Run until the connection is lost: retained messages first, then the outbox pump."""
        self._conn = conn
        self._inflight.clear()
        await self._session_start(conn)
        self.connected.set()
        self.stats.mqtt_connected = True
        async with asyncio.TaskGroup() as tg:
            pump = tg.create_task(self._pump(conn))
            misc = tg.create_task(self._misc(conn))
            await conn.lost.wait()
            pump.cancel()
            misc.cancel()

    async def _session_start(self, conn: LoopConnection) -> None:
        """First messages of a connection: the gateway's online status and every retained message."""
        await self._wait_for_commands()
        online = wire.GatewayStatus(state="online", since=wire.now_us(), version=__version__)
        self._retained[self._status_topic] = wire.encode_gateway_status(online)
        for topic, payload in self._retained.items():
            conn.client.publish(topic, payload, qos=1, retain=True)

    async def _wait_for_commands(self) -> None:
        ready = self.announce_when
        if ready is None or ready.is_set():
            return
        try:
            async with asyncio.timeout(ANNOUNCE_WAIT):
                await ready.wait()
        except TimeoutError:
            # Values must not wait for the command side: announce anyway (a command sent now times out).
            log.warning("online_before_commands_subscribed", waited_s=ANNOUNCE_WAIT)

    async def _misc(self, conn: LoopConnection) -> None:
        """Keepalive pings and the keepalive timeout check, which paho leaves to its loop."""
        while True:
            await asyncio.sleep(_MISC_INTERVAL)
            conn.client.loop_misc()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        row_id = self._inflight.pop(mid, None)
        if row_id is not None:
            self._acked.append(row_id)
            self.stats.acked += 1
            self._wake.set()

    async def _pump(self, conn: LoopConnection) -> None:
        """Publish outbox rows in order, at most `window` unacknowledged; delete acknowledged rows."""
        # Rows acknowledged on the previous connection are deleted before anything is resent.
        await self._delete_acked()
        last_id = 0
        client = conn.client
        while True:
            self._wake.clear()
            busy = await self._delete_acked()
            free = self.window - len(self._inflight)
            if free > 0 and self._ready():
                rows = await self.outbox.read_after(last_id, free)
                for row in rows:
                    info = self._publish_row(client, row)
                    if info is None:  # nothing to send for this row: done with it
                        self._acked.append(row.id)
                        last_id = row.id
                        continue
                    if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        # Not sent: the row stays in the outbox; a fresh connection resends it.
                        conn.lost_reason = f"publish failed: {mqtt.error_string(info.rc)}"
                        conn.lost.set()
                        return
                    self._inflight[info.mid] = row.id
                    last_id = row.id
                    self.stats.batches_out += 1
                busy = busy or bool(rows)
                if not rows:
                    self._caught_up()
            if not busy:
                await self._wake.wait()

    async def _delete_acked(self) -> bool:
        if not self._acked:
            return False
        ids, self._acked = self._acked, []
        await self.outbox.delete(ids)
        return True

    async def _drain(self, conn: LoopConnection) -> None:
        """Publish what is left in the outbox and wait for the acknowledgements (graceful stop only)."""
        while not conn.lost.is_set():
            self._wake.clear()
            await self._delete_acked()
            if self.outbox.rows == 0 and not self._inflight:
                return
            free = self.window - len(self._inflight)
            # Rows go out in id order, so every row up to the newest in flight was already published.
            after = max(self._inflight.values(), default=0)
            rows = await self.outbox.read_after(after, free) if free > 0 else []
            for row in rows:
                info = self._publish_row(conn.client, row)
                if info is None:
                    self._acked.append(row.id)
                    continue
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return
                self._inflight[info.mid] = row.id
                self.stats.batches_out += 1
            if not rows:
                await self._wake.wait()

    # --- what a northbound protocol decides (the Sparkplug link overrides these) -------------

    def _ready(self) -> bool:
        """May the pump publish data now?"""
        return True

    def _caught_up(self) -> None:
        """The pump found no more rows to publish."""

    def _publish_row(self, client: mqtt.Client, row: OutboxRow) -> mqtt.MQTTMessageInfo | None:
        """Publish one outbox row; the message whose PUBACK removes the row, None if there is none."""
        return client.publish(self._data_topic(row.device), row.payload, qos=1)

    def _farewell(self) -> tuple[str, bytes]:
        """The QoS 1 message of a graceful stop, acknowledged before DISCONNECT: (topic, payload)."""
        offline = wire.GatewayStatus(state="offline", since=wire.now_us(), version=__version__)
        return self._status_topic, wire.encode_gateway_status(offline)

    def _data_topic(self, device: str) -> str:
        topic = self._data_topics.get(device)
        if topic is None:
            topic = self._data_topics[device] = wire.device_topic(self.gateway_id, device, "data")
        return topic

    async def _goodbye(self, conn: LoopConnection) -> None:
        """Graceful stop: retained status offline (acknowledged, within a timeout), then DISCONNECT."""
        if conn.lost.is_set():
            return
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT):
                if self.before_goodbye is not None:
                    await self.before_goodbye()
                await self._drain(conn)
        except TimeoutError:
            log.info("mqtt_drain_incomplete", outbox_rows=self.outbox.rows, hint="sent after the next start")
        farewell_topic, payload = self._farewell()
        acked = asyncio.get_running_loop().create_future()
        previous = self._on_publish  # what every connection's client starts with

        def on_publish(client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
            previous(client, userdata, mid, reason, props)
            if mid == info.mid and not acked.done():
                acked.set_result(None)

        conn.client.on_publish = on_publish
        info = conn.client.publish(
            farewell_topic, payload, qos=1, retain=farewell_topic == self._status_topic
        )
        try:
            async with asyncio.timeout(_GOODBYE_TIMEOUT):
                if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                    await acked
                conn.client.disconnect()
                await conn.lost.wait()
        except TimeoutError:
            log.warning("mqtt_goodbye_timeout")
        log.info("mqtt_closed", host=self.settings.host, port=self.settings.port)
