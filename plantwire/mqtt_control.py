"""A small MQTT client for the control plane (commands and replies), separate from the data plane.

Why a second connection instead of sharing the data link or the ingest: commands are a few a
minute, data is thousands of values a second. On its own connection a command never waits behind
an outbox backlog or an ingest commit, and the data paths stay exactly as measured.

paho runs its network loop (and its reconnects) on its own thread; every received message and
every connection change is handed to the asyncio loop with `call_soon_threadsafe`, so the rest of
the code only ever runs on the loop. Clean session: a command that arrives while nobody listens is
lost on purpose (its sender times out); nothing stale is executed after a reconnect.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from plantwire.config import MqttSettings
from plantwire.logs import get_logger

log = get_logger(__name__)

OnMessage = Callable[[str, bytes], None]
_STOP_TIMEOUT: Final = 5.0


def new_client(settings: MqttSettings, client_id: str, *, clean_session: bool, **options: Any) -> mqtt.Client:
    """A paho client as every Plantwire part uses it: callback API 2, MQTT 3.1.1 (the embedded demo
    broker speaks only that), the broker credentials (the username of this client id's connection,
    see plantwire.broker_auth) and TLS with the settings' CA when one is set."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=MQTTProtocolVersion.MQTTv311,
        **options,
    )
    username = settings.username_for(client_id)
    if username is not None:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(username, password)
    if settings.tls_ca_file is not None:
        context = ssl.create_default_context(cafile=settings.tls_ca_file)
        if settings.tls_cert_file is not None:
            context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
        client.tls_set_context(context)
    return client


def disable_nagle(client: mqtt.Client) -> None:
    """Send small MQTT packets at once.

    Without TCP_NODELAY, Nagle's algorithm holds a small packet until the previous one is
    acknowledged: measured here as ~40 ms per hop (88 ms per command round trip before, 6-8 ms after).
    """
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class ControlClient:
    """`async with ControlClient(...) as c:` connects in the background and resubscribes on reconnect.

    `on_message(topic, payload)` runs on the event loop. `publish()` may be called any time; while
    disconnected it returns False (the caller's timeout covers the rest).
    """

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        subscriptions: Sequence[str],
        on_message: OnMessage,
        subscribed: asyncio.Event | None = None,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.subscriptions = list(subscriptions)
        self.on_message = on_message
        self.subscribed = asyncio.Event() if subscribed is None else subscribed
        """Set while connected with every subscription acknowledged (pass one in to share it)."""
        self._loop = asyncio.get_running_loop()
        self._client = new_client(settings, client_id, clean_session=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(settings.reconnect_max_delay)))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    async def __aenter__(self) -> ControlClient:
        s = self.settings
        self._client.connect_async(s.host, s.port, s.keepalive)
        self._client.loop_start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.disconnect()
        try:
            async with asyncio.timeout(_STOP_TIMEOUT):
                await asyncio.to_thread(self._client.loop_stop)
        except TimeoutError:
            log.warning("control_mqtt_stop_timeout", client_id=self.client_id)

    def publish(self, topic: str, payload: bytes) -> bool:
        """QoS 1, not retained. False when not connected (nothing is queued for later)."""
        if not self._client.is_connected():
            return False
        info = self._client.publish(topic, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.warning("control_publish_failed", topic=topic, rc=mqtt.error_string(info.rc))
            return False
        return True

    # --- paho's thread ------------------------------------------------------------------------

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: we are shutting down
            pass

    def _on_connect(self, c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("control_mqtt_refused", client_id=self.client_id, reason=str(reason))
            return
        log.info("control_mqtt_connected", client_id=self.client_id)
        disable_nagle(c)
        if self.subscriptions:
            c.subscribe([(topic, 1) for topic in self.subscriptions])
        else:
            self._to_loop(self.subscribed.set)

    def _on_subscribe(self, c: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        self._to_loop(self.subscribed.set)

    def _on_disconnect(self, c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._to_loop(self.subscribed.clear)
        log.info("control_mqtt_disconnected", client_id=self.client_id, reason=str(reason))

    def _on_message(self, c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._to_loop(self.on_message, msg.topic, bytes(msg.payload))
