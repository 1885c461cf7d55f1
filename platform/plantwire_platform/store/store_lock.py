"""One platform per store: an exclusive `flock` on a lock file beside the store, held for the
process's life and released by the kernel however the process ends (no stale lock after a crash).

A second `plantwire platform` on the same store stops here, before it opens the store, binds its
port or connects to MQTT, so it disturbs nothing (in particular not the first one's persistent
MQTT session). The file holds the holder's pid, for the message.

Which file: the SQLite file's `<file>.lock`; for InfluxDB its registry side file's; for PostgreSQL
`<data folder>/platform.lock` (the folder of `store.path`, where the tokens and identifiers live).
PostgreSQL is shared by workers of a shared group by design (docs/scaling.md), so the database is
not locked whole: each worker locks its own data folder here, and the store holds an advisory lock
named after the worker's MQTT client id (`PostgresStore.hold_instance_lock`), so two processes with
one client id (one MQTT session) cannot both run on one schema.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Final

LOCK_SUFFIX: Final = ".lock"


class StoreInUse(Exception):
    """Another process holds the store's lock; the message is one line for the operator."""


class StoreLock:
    """`StoreLock.acquire(path)` or StoreInUse; `release()` (or process exit) lets go."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path, what: str) -> StoreLock:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreInUse(
                f"another platform (pid {holder}) is already running on {what}; stop it first (lock {path})"
            ) from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None
