"""Resuming a device's OPC UA session and subscription after the gateway itself died (kill -9, power cut).

A session outlives its TCP connection on the server for the session timeout, and its subscription
keeps queueing values (up to the monitored-item queue size) for its lifetime. So the gateway keeps,
per device under `<data_dir>/sessions/`, what it needs to pick both up again:

    <device>.session.json   the session's authentication token (written by asyncua, mode 0600)
    <device>.sub.json       the subscription id and each monitored item's client/server handle and tag

After a restart the new process re-activates the old session on a new channel and adopts the old
subscription instead of creating one: the values the device produced while the gateway was down
arrive from the server's queues. A clean stop closes the session and deletes both files.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import Client, ua
from asyncua.common.subscription import OverflowPolicy, Subscription, SubscriptionItemData

from plantwire.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SavedSubscription:
    endpoint: str
    subscription_id: int
    items: list[tuple[int, int, str, str]]
    """(client handle, server handle, tag, node id) per monitored item."""


@dataclass(frozen=True, slots=True)
class ResumePaths:
    session: Path
    subscription: Path

    @classmethod
    def of(cls, state_dir: Path, device_id: str) -> ResumePaths:
        return cls(state_dir / f"{device_id}.session.json", state_dir / f"{device_id}.sub.json")

    def saved_token(self) -> str | None:
        try:
            return str(json.loads(self.session.read_text(encoding="utf-8"))["authentication_token"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def load(self, endpoint: str) -> SavedSubscription | None:
        try:
            raw = json.loads(self.subscription.read_text(encoding="utf-8"))
            saved = SavedSubscription(
                raw["endpoint"],
                int(raw["subscription_id"]),
                [tuple(i) for i in raw["items"]],  # type: ignore[misc]
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return saved if saved.endpoint == endpoint else None

    def save(self, saved: SavedSubscription) -> None:
        self.subscription.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.subscription.with_suffix(".tmp")
        body = {"endpoint": saved.endpoint, "subscription_id": saved.subscription_id, "items": saved.items}
        tmp.write_text(json.dumps(body), encoding="utf-8")
        os.replace(tmp, self.subscription)

    def forget(self) -> None:
        for path in (self.subscription, self.session):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def resumed(client: Client, token_before: str | None) -> bool:
    """Whether `connect()` re-activated the persisted session rather than creating a new one."""
    token = client.uaclient.session.authentication_token
    return token_before is not None and not token.is_null() and token.to_string() == token_before


async def leave_open(client: Client) -> None:
    """Drop the connection but leave the session (and its subscription) on the server for a restart."""
    client.uaclient.request_disconnect()
    tasks = [client._stale_watchdog_task, client._supervisor_task, client._renew_channel_task]
    tasks.append(client.uaclient.session._publish_task)
    for task in tasks:
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    client.disconnect_socket()


def adopt(
    client: Client,
    saved: SavedSubscription,
    params: ua.CreateSubscriptionParameters,
    queue_maxsize: int,
    queue_size: int,
) -> Subscription:
    """A Subscription object for the server's existing subscription `saved.subscription_id`."""
    session = client.uaclient.session
    sub = Subscription(session, params, None, queue_maxsize=queue_maxsize, overflow=OverflowPolicy.DISCONNECT)
    sub.set_overflow_disconnect_handler(client.uaclient.notify_transport_lost)
    sub.subscription_id = saved.subscription_id
    items: dict[int, Any] = sub._monitored_items  # asyncua 2.1.0 (pinned) keeps items by client handle
    for client_handle, server_handle, _tag, node_id in saved.items:
        data = SubscriptionItemData()
        data.node = client.get_node(node_id)
        data.client_handle, data.server_handle = client_handle, server_handle
        data.attribute = ua.AttributeIds.Value
        data.queuesize = queue_size
        items[client_handle] = data
    session._subscription_callbacks[saved.subscription_id] = sub.publish_callback
    client._subscriptions.append(sub)
    session.ensure_publish_loop()
    return sub
