"""Threads for blocking store calls from async code, that shutdown can wait for.

Store methods block (SQLite), so async callers run them here. Each caller (the API, the app
host, the command service) owns its own small pool on purpose: an app busy with the store never
takes the API's threads. `close()` waits for calls still running: a cancelled await does not stop
its thread, and the store must outlive every call made on it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class StoreThreads:
    def __init__(self, name: str, threads: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on one of the threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def close(self) -> None:
        """Refuse new calls, drop queued ones and wait for those running (blocks)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
