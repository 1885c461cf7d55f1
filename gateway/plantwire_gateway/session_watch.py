"""Watching asyncua's connection supervisor: link down, session resumed, or session lost for good.

asyncua reports its state changes and subscription re-creations to an `Observer`. A state that
leaves CONNECTED means the link is down and the supervisor is trying to re-activate the session;
CONNECTED again with the subscription transferred means nothing was lost. A re-*created*
subscription (same client handles) means the server had lost the session: the queued values are
gone, so the device session marks the outage and re-browses. A resume that takes longer than
`resume_window` seconds ends the session (the device session starts over).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable

from asyncua import ua
from asyncua.client.ua_client import UaClientState
from asyncua.observer import Observer, SubscriptionEvent

from .settings import DeviceConfig


class SessionWatch(Observer):
    """Calls `down()` / `up()` on link changes after the subscription exists; sets `lost` when done for."""

    def __init__(
        self,
        down: Callable[[], None],
        up: Callable[[], None],
        recreated: Callable[[], None],
        lost: asyncio.Event,
        resume_window: float,
    ) -> None:
        self._down, self._up, self._recreated, self._lost = down, up, recreated, lost
        self._window = resume_window
        self._timer: asyncio.TimerHandle | None = None
        self._is_down = False
        self.subscribed = False
        self.resumes = 0

    def on_state_change(self, state: UaClientState) -> None:
        if not self.subscribed or self._lost.is_set():
            return
        if state is UaClientState.CONNECTED:
            if self._is_down:
                self._is_down = False
                self._cancel_timer()
                self.resumes += 1
                self._up()
        elif state in (UaClientState.RECONNECTING, UaClientState.DISCONNECTED) and not self._is_down:
            self._is_down = True
            self._timer = asyncio.get_running_loop().call_later(self._window, self._lost.set)
            self._down()

    def on_subscription_event(self, subscription_id: int | None, event: SubscriptionEvent) -> None:
        if self.subscribed and event is SubscriptionEvent.RECREATED and not self._lost.is_set():
            self._recreated()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def close(self) -> None:
        self._cancel_timer()
        with contextlib.suppress(Exception):
            self.subscribed = False


def subscription_parameters(
    device: DeviceConfig, session_timeout_ms: float
) -> ua.CreateSubscriptionParameters:
    """Keep-alive within the stall timeout; a lifetime as long as the session, so a resumed session finds it.

    asyncua recreates (and so empties) a subscription that sent nothing for 1.5 keep-alive periods:
    the keep-alive period is the stall timeout, so a stall shorter than that never triggers it.
    """
    interval = device.publishing_interval_ms
    keepalive = max(3, math.ceil(device.stall_timeout_s * 1000 / interval))
    lifetime = max(3 * keepalive, math.ceil(session_timeout_ms / interval))
    params = ua.CreateSubscriptionParameters()
    params.RequestedPublishingInterval = interval
    params.RequestedMaxKeepAliveCount = keepalive
    params.RequestedLifetimeCount = lifetime
    params.MaxNotificationsPerPublish = 10_000
    params.PublishingEnabled = True
    params.Priority = 0
    return params
