"""Which commands this gateway has seen, and their replies: the at-most-once guard.

A command id is recorded *before* it runs (reply NULL) and its reply after. A repeated id is
answered from here without running again; an id recorded without a reply (the gateway stopped
mid-command) is answered "interrupted: outcome unknown" rather than run a second time. Kept in
`<data_dir>/commands.sqlite3`, so this holds across restarts; the newest `KEEP` ids are kept.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Final

KEEP: Final = 10_000
_PRUNE_EVERY: Final = 100

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS commands (
    id       TEXT PRIMARY KEY,
    received INTEGER NOT NULL,
    reply    BLOB
);
CREATE INDEX IF NOT EXISTS commands_received ON commands (received);
"""


class CommandLog:
    """Blocking: call through `asyncio.to_thread`. One connection behind a lock."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._inserts = 0

    @classmethod
    def open(cls, path: Path) -> CommandLog:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        return cls(conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def begin(self, command_id: str, received: int) -> tuple[bool, bytes | None]:
        """Record `command_id`; (True, None) if new, else (False, the kept reply or None if unfinished)."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO commands (id, received) VALUES (?, ?)", (command_id, received)
            )
            if cur.rowcount == 1:
                self._inserts += 1
                if self._inserts % _PRUNE_EVERY == 0:
                    self._prune()
                return True, None
            row = self._conn.execute("SELECT reply FROM commands WHERE id = ?", (command_id,)).fetchone()
            return False, (bytes(row[0]) if row and row[0] is not None else None)

    def finish(self, command_id: str, reply: bytes) -> None:
        with self._lock:
            self._conn.execute("UPDATE commands SET reply = ? WHERE id = ?", (reply, command_id))

    def _prune(self) -> None:
        self._conn.execute(
            "DELETE FROM commands WHERE received < "
            "(SELECT received FROM commands ORDER BY received DESC LIMIT 1 OFFSET ?)",
            (KEEP,),
        )
