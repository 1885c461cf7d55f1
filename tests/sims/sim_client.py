"""Client-side helpers for simulator tests: a subscription handler that keeps what it is given, polling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from asyncua import Client, ua

from plantwire_sims.machine import SimMachine
from plantwire_sims.value_writer import datetime_to_us


class Collector:
    """Subscription handler keeping every notification as (tag, source timestamp in µs, value)."""

    def __init__(self, machine: SimMachine):
        self._prefix = f"{machine.name}/"
        self.received: list[tuple[str, int, Any]] = []

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        dv: ua.DataValue = data.monitored_item.Value
        assert dv.SourceTimestamp is not None
        tag = node.nodeid.Identifier.removeprefix(self._prefix)
        self.received.append((tag, datetime_to_us(dv.SourceTimestamp), val))

    def status_change_notification(self, status: Any) -> None:
        pass


async def subscribe_all(
    client: Client, machine: SimMachine, collector: Collector, queue: int = 10_000
) -> None:
    sub = await client.create_subscription(50, collector)
    nodes = [client.get_node(f"ns=2;s={machine.name}/{tag}") for tag in machine.tags]
    await sub.subscribe_data_change(nodes, queuesize=queue)


async def wait_for(condition: Callable[[], Any], within: float = 5.0) -> None:
    """Poll `condition` until it holds, for at most `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def read_until(client: Client, node_id: str, accept: Callable[[Any], bool], within: float = 5.0) -> Any:
    """Read a node over OPC UA until its value is accepted, for at most `within` seconds; return it."""
    variable = client.get_node(node_id)
    async with asyncio.timeout(within):
        while True:
            value = await variable.read_value()
            if accept(value):
                return value
            await asyncio.sleep(0.05)


def node(machine: SimMachine, tag: str) -> str:
    return f"ns=2;s={machine.name}/{tag}"
