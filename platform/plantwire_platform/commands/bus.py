"""The platform's command side: publish a command to a gateway and wait for its reply by id.

Replies arrive on a small MQTT connection of its own (see `plantwire.mqtt_control`), which also
follows the gateways' retained status so the API can say which gateways exist and are online.
Two requests with the same command id share one wait, and the gateway runs an id at most once,
so a client may safely retry a request that timed out with the same id.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

from plantwire import wire
from plantwire.config import MqttSettings
from plantwire.logs import get_logger
from plantwire.mqtt_control import ControlClient

log = get_logger(__name__)

DEFAULT_TIMEOUT_S: Final = 10.0
MAX_TIMEOUT_S: Final = 60.0
EXPIRY_GRACE_S: Final = 30.0
"""A command may still run this long after the platform stopped waiting (allows for clock skew)."""
_GATEWAY_STATUS: Final = f"{wire.ROOT}/+/status"


class CommandTimeout(Exception):
    """No reply within the timeout (the command may or may not have run)."""


class CommandNotSent(Exception):
    """The platform's command connection to the broker is down."""


@dataclass(frozen=True, slots=True)
class Outcome:
    reply: wire.CommandReply
    rtt_ms: float
    """From publishing the command to receiving the reply, measured here."""


def new_command_id() -> str:
    return uuid.uuid4().hex


class CommandBus:
    """`async with CommandBus(mqtt) as bus:` then `await bus.execute(gateway, command, timeout_s)`."""

    def __init__(self, mqtt: MqttSettings) -> None:
        self.mqtt = mqtt
        self.gateways: dict[str, wire.GatewayStatus] = {}
        self._pending: dict[str, asyncio.Future[wire.CommandReply]] = {}
        self._client: ControlClient | None = None

    async def __aenter__(self) -> CommandBus:
        client_id = f"pw-cmd-{uuid.uuid4().hex[:12]}"
        subscriptions = [wire.REPLY_SUBSCRIPTION, _GATEWAY_STATUS]
        self._client = await ControlClient(self.mqtt, client_id, subscriptions, self._on_message).__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(None, None, None)
        for fut in self._pending.values():
            fut.cancel()

    async def wait_ready(self) -> None:
        """Until the reply subscription is in place (bounded by the caller's timeout)."""
        assert self._client is not None
        await self._client.subscribed.wait()

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            if topic.endswith("/reply"):
                reply = wire.decode_reply(payload)
                fut = self._pending.get(reply.id)
                if fut is not None and not fut.done():
                    fut.set_result(reply)
            else:
                parsed = wire.parse_topic(topic)
                if parsed.device is None:
                    self.gateways[parsed.gateway] = wire.decode_gateway_status(payload)
        except wire.WireError as err:
            log.warning("control_message_rejected", topic=topic, error=str(err))

    async def execute(
        self, gateway: str, command: wire.Command, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> Outcome:
        """Publish `command` to `gateway` and wait for its reply. Raises CommandTimeout, CommandNotSent."""
        started = time.perf_counter()
        if self._client is not None and not self._client.subscribed.is_set():
            # Just started or reconnecting: a reply sent before we listen would be lost.
            try:
                async with asyncio.timeout(timeout_s):
                    await self._client.subscribed.wait()
            except TimeoutError:
                raise CommandNotSent("the platform's command connection to the broker is down") from None
        fut = self._pending.get(command.id)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._pending[command.id] = fut
            fut.add_done_callback(lambda _: self._pending.pop(command.id, None))
            if self._client is None or not self._client.publish(
                wire.command_topic(gateway), wire.encode_command(command)
            ):
                self._pending.pop(command.id, None)
                raise CommandNotSent("the platform is not connected to the MQTT broker; try again shortly")
        try:
            async with asyncio.timeout(timeout_s - (time.perf_counter() - started)):
                reply = await asyncio.shield(fut)
        except TimeoutError:
            # Never cancelled (another request with the same id may be waiting on it): forgotten later.
            loop = asyncio.get_running_loop()
            loop.call_later(EXPIRY_GRACE_S, self._pending.pop, command.id, None)
            raise CommandTimeout(
                f"gateway {gateway!r} did not answer command {command.id} within {timeout_s:g} s; it may "
                "be offline or busy. The command may still run: retry with the same id to learn its outcome"
            ) from None
        return Outcome(reply, round((time.perf_counter() - started) * 1000, 3))


def make_command(
    op: wire.CommandOp,
    device: str,
    args: dict[str, Any],
    timeout_s: float,
    user: str,
    command_id: str | None = None,
) -> wire.Command:
    now = wire.now_us()
    expires = now + int((timeout_s + EXPIRY_GRACE_S) * 1_000_000)
    return wire.Command(command_id or new_command_id(), op, device, args, now, expires, user)
