"""One SQLite transaction on a connection in autocommit mode: committed, or rolled back and raised."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[sqlite3.Connection]:
    """`begin` ("BEGIN IMMEDIATE": take the write lock now; "BEGIN": a read transaction until
    the first write), then COMMIT when the block ends, or ROLLBACK and the exception again."""
    conn.execute(begin)
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
