"""Run a service's async main: signals cancel it, and it unwinds cleanly."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable


def run_until_signalled(main: Callable[[], Awaitable[None]]) -> None:
    """Run `main()` until it returns or SIGINT/SIGTERM arrives; a signal cancels it.

    Cancellation unwinds the service's TaskGroup and AsyncExitStack in reverse order,
    so every resource closes the same way whether the service ends by itself or is stopped.
    """

    async def _guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await main()
        except asyncio.CancelledError:
            if task.cancelling() == 0:
                raise
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    try:
        asyncio.run(_guarded())
    except asyncio.CancelledError:
        pass
