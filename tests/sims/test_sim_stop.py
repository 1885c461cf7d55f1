"""A simulator stops promptly even while a client keeps reconnecting (a gateway does, within ms).

asyncua's own stop closes the connections first and its listener last, and Python 3.11 waits for
every connection to close: a client that got in between kept the simulator alive until that client
went away (seen as a 20 s SIGTERM timeout in the OPC UA restart chaos test).
"""

from __future__ import annotations

import asyncio
import contextlib

from plantwire_sims.machine import SimMachine


async def test_stop_does_not_wait_for_a_client_that_keeps_reconnecting(port: int) -> None:
    machine = SimMachine("pump", "pump-1", port, rate_hz=20)
    await machine.start()
    held: list[asyncio.StreamWriter] = []
    refused = 0

    async def reconnect_forever() -> None:
        nonlocal refused
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                held.append(writer)  # never closed by the client: only the server may end it
            except OSError:
                refused += 1
            await asyncio.sleep(0)

    client = asyncio.create_task(reconnect_forever())
    try:
        while len(held) < 5:
            await asyncio.sleep(0.01)
        async with asyncio.timeout(10):
            await machine.stop()
        assert machine.server is None
        await asyncio.sleep(0.05)
        assert refused > 0, "after stop the port should refuse connections"
    finally:
        client.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await client
        for writer in held:
            writer.close()
