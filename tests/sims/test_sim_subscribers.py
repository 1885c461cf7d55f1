"""Two real clients subscribed at once both get every value; a misbehaving one stops neither the machine
nor the other."""

from __future__ import annotations

import asyncio
from typing import Any

from asyncua import Client
from sim_client import Collector, node, subscribe_all, wait_for
from test_sim_values import by_tag

from plantwire_sims.machine import SimMachine


class RaisingCollector(Collector):
    """A subscriber whose own handler raises on every notification (after keeping it)."""

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        super().datachange_notification(node, val, data)
        raise RuntimeError("this subscriber's handler is broken")


def assert_complete(received: list[tuple[str, int, Any]], produced: dict[str, list[tuple[int, Any]]]) -> None:
    for tag, rows in by_tag(received).items():
        first = produced[tag].index(rows[0])  # the value current at subscribe time, then every one
        assert rows == produced[tag][first:], tag


async def test_two_subscribers_get_everything_and_a_failing_one_harms_nobody(port: int) -> None:
    async with asyncio.timeout(60):
        async with SimMachine("cnc", "cnc-1", port, rate_hz=20, extra_tags=10, record=True) as machine:
            async with Client(machine.endpoint) as good_client, Client(machine.endpoint) as bad_client:
                good, bad = Collector(machine), RaisingCollector(machine)
                await subscribe_all(good_client, machine, good)
                await subscribe_all(bad_client, machine, bad)
                # A deadband on a String: asyncua accepts the item, then its server-side callback raises
                # TypeError on the next change of the state.
                bad_sub = await bad_client.create_subscription(50, bad)
                await bad_sub.deadband_monitor(bad_client.get_node(node(machine, "Status/State")), 1.0)

                root = good_client.get_node(machine.root_node_id)
                await root.call_method("2:Stop")  # State RUNNING -> IDLE: the bad item fails on it
                await wait_for(lambda: machine.callback_errors >= 1)
                await root.call_method("2:Start")  # -> RUNNING, and fails once more
                await wait_for(lambda: machine.callback_errors >= 2)
                ticks = machine.ticks
                # Still ticking (1 s at 20 Hz; the broken handler logs a traceback per notification, so
                # a loaded machine gets longer).
                await wait_for(lambda: machine.ticks >= ticks + 20, within=15)
                machine.pause()
                produced = by_tag(machine.produced)
                last = {tag: rows[-1] for tag, rows in produced.items()}
                for collector in (good, bad):
                    await wait_for(lambda c=collector: all(last[t] in by_tag(c.received)[t] for t in last))

    assert set(by_tag(good.received)) == set(by_tag(bad.received)) == set(machine.tags)
    assert_complete(good.received, produced)
    # The broken item's notifications come on top of the good ones: drop its extra State values.
    bad_rows = [row for row in bad.received if row[0] != "Status/State"]
    assert_complete(bad_rows, produced)
    states = [value for _, value in by_tag(good.received)["Status/State"]]
    assert states[-2:] == ["IDLE", "RUNNING"]
    assert machine.callback_errors == 2
