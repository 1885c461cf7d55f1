"""Where a platform's tokens, sessions and login links live when they are shared by replicas.

With the SQLite (or InfluxDB) store, they are this process's own: tokens in `<data_dir>/auth.sqlite`,
sessions and login links in memory. With the PostgreSQL store, an `AuthDatabase` names the same
database and schema as the store, so that every replica answers every request (docs/scaling.md,
"Stateless API replicas"). This module is plain data: asyncpg is imported only where it is used
(postgres_auth.py), when the store is PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr


@dataclass(frozen=True, slots=True)
class AuthDatabase:
    """The store's PostgreSQL database and schema, as the auth tables need them."""

    dsn: SecretStr
    """Connection string; secret, never logged."""
    schema: str
    request_timeout_s: float = 30.0
    startup_timeout_s: float = 30.0
