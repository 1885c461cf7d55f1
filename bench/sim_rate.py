"""How many values/s the simulated machines write, with no subscriber and with one (in another process).

    .venv/bin/python bench/sim_rate.py [--configs 1x2000,4x500] [--rate 20] [--seconds 5] [--stock-copy]
                                       [--history SECONDS]

For each configuration (machines x extra tags) it runs the machines in this process at the given tick
rate, then prints the values written per second and this process's CPU use; with a subscriber it also
prints how many notifications the subscriber received against how many values were written while it
was subscribed (equal means nothing was dropped). A rate the machines cannot keep up with shows as
written/s below requested/s. `--stock-copy` puts back asyncua's per-subscriber deep copy for comparison;
`--history S` keeps S seconds of every variable for HistoryRead, as `plantwire sim --history S` does.

Asking for far more than a path sustains with a subscriber makes asyncua's queues and heap grow until
full garbage collections stall the process: `--stock-copy --configs 1x2000` (40k values/s) does that
and never finishes. Compare the two paths at 1x1000.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from contextlib import AsyncExitStack

from asyncua import Client, ua

from plantwire.broker import free_port
from plantwire.logs import configure_logging
from plantwire_sims import value_writer
from plantwire_sims.machine import SimMachine

QUEUE_SIZE = 10_000
PUBLISH_MS = 100


async def subscriber(endpoints: list[str], roots: list[str]) -> None:
    """Child process: subscribe to every variable of every machine, print the running count.

    It counts whole publish responses instead of going through asyncua's per-notification handler,
    so that the subscriber (decoding only) is not what limits the measurement.
    """
    received = 0

    def count(result: ua.PublishResult) -> None:
        nonlocal received
        for notification in result.NotificationMessage.NotificationData or []:
            if isinstance(notification, ua.DataChangeNotification):
                received += len(notification.MonitoredItems)

    async with AsyncExitStack() as stack:
        for endpoint, root in zip(endpoints, roots, strict=True):
            client = Client(endpoint, timeout=30)
            await stack.enter_async_context(client)
            nodes = []
            for folder in await client.get_node(root).get_children(refs=ua.ObjectIds.Organizes):
                nodes.extend(await folder.get_children(refs=ua.ObjectIds.HasComponent))
            sub = await client.create_subscription(PUBLISH_MS, None)
            sub.server._subscription_callbacks[sub.subscription_id] = count  # type: ignore[union-attr, index]
            for start in range(0, len(nodes), 1000):
                await sub.subscribe_data_change(nodes[start : start + 1000], queuesize=QUEUE_SIZE)
        print("ready", flush=True)
        try:
            while True:
                await asyncio.sleep(0.25)
                print(received, flush=True)
        except BrokenPipeError:  # the benchmark is done with us
            return


async def measure(
    machines: int, tags: int, rate: float, seconds: float, subscribed: bool, freeze: bool, history_s: float
) -> str:
    async with AsyncExitStack() as stack:
        sims = [
            await stack.enter_async_context(
                SimMachine(
                    "meter",
                    f"bench-{i}",
                    free_port(),
                    rate_hz=rate,
                    seed=i,
                    extra_tags=tags,
                    history_s=history_s,
                )
            )
            for i in range(1, machines + 1)
        ]
        proc = None
        received = [0]
        if subscribed:
            for s in sims:  # hold still while the subscriber subscribes, so the count below is exact
                s.pause()
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--subscriber",
                *[f"{s.endpoint}|{s.root_node_id}" for s in sims],
                stdout=asyncio.subprocess.PIPE,
            )
            stack.callback(proc.kill)
            assert proc.stdout is not None
            await proc.stdout.readline()  # "ready"
            stdout = proc.stdout

            async def follow() -> None:
                while line := await stdout.readline():
                    received[0] = int(line)

            follower = asyncio.create_task(follow())
            for s in sims:
                s.resume()
        if freeze:
            gc.freeze()  # the address spaces are built: keep full collections from scanning them
        written0 = sum(s.values_written for s in sims)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        written = sum(s.values_written for s in sims) - written0
        line = (
            f"{machines:>3} x {tags:>5} tags  subscribers={int(subscribed)}  "
            f"requested {sum(len(s.tags) for s in sims) * rate:>8.0f}/s  written {written / wall:>8.0f}/s  "
            f"sim CPU {100 * cpu / wall:>4.0f}%"
        )
        if proc is not None:
            for s in sims:
                s.pause()
            total_written = sum(s.values_written for s in sims) - written0
            expected = total_written + sum(len(s.tags) for s in sims)  # + each item's initial value
            drain_started = time.perf_counter()
            before = -1
            while (
                received[0] != before and received[0] < expected and time.perf_counter() - drain_started < 30
            ):
                before = received[0]
                await asyncio.sleep(1.5)
            follower.cancel()
            line += (
                f"  subscriber got {received[0]} of {expected} "
                f"(drained {time.perf_counter() - drain_started:.1f} s after the window)"
            )
        return line


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--configs", default="1x1000,1x2000,4x500,10x200", help="machines x extra tags, comma-separated"
    )
    parser.add_argument("--rate", type=float, default=20.0, help="tick rate in Hz (default 20)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring window per run")
    parser.add_argument("--stock-copy", action="store_true", help="use asyncua's deep-copied DataValue")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the machines are built")
    parser.add_argument("--history", type=float, default=0.0, help="seconds of history kept (default 0, off)")
    parser.add_argument("--subscriber", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configure_logging("error", "console")
    if args.subscriber:
        endpoints, roots = zip(*(item.split("|") for item in args.subscriber), strict=True)
        asyncio.run(subscriber(list(endpoints), list(roots)))
        return
    if args.stock_copy:
        value_writer.FrozenDataValue = ua.DataValue  # type: ignore[misc, assignment]
    path = "stock deep-copy" if args.stock_copy else "no-copy"
    freeze = ", gc.freeze()" if args.gc_freeze else ""
    history = f", {args.history:g} s history" if args.history else ""
    print(f"tick rate {args.rate} Hz, {args.seconds} s per run, {path} write path{freeze}{history}")
    for config in args.configs.split(","):
        machines, tags = (int(part) for part in config.split("x"))
        for subscribed in (False, True):
            print(
                asyncio.run(
                    measure(machines, tags, args.rate, args.seconds, subscribed, args.gc_freeze, args.history)
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
