"""The token catalog: one table of named, scoped tokens, kept as digests only.

`TokenCatalogBackend` is what any catalog offers (blocking calls, safe to share between threads).
Two implementations: `TokenCatalog` here, one SQLite file in the platform's data dir (the SQLite and
InfluxDB stores), and `PostgresTokenCatalog` (postgres_auth.py) in the store's PostgreSQL schema,
shared by every replica on that database. The running platform uses a catalog through
`AsyncTokenCatalog` (token_service.py), which answers `verify` from memory and reloads when
`data_version` changes. The CLI uses the SQLite file directly while the platform runs: both sides
use WAL and a busy timeout, and the platform notices other writers through `PRAGMA data_version`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from plantwire.logs import get_logger
from plantwire.timeunits import US_PER_S, to_iso
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.tokens import (
    Identity,
    check_name,
    looks_like_token,
    new_token,
    same_digest,
    token_digest,
)

log = get_logger(__name__)

TOKENS_FILE: Final = "auth.sqlite"
"""The catalog's file in the platform's data dir (the folder of the store file)."""

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS api_tokens (
    name       TEXT PRIMARY KEY,
    scope      TEXT NOT NULL CHECK (scope IN ('read', 'operate', 'admin')),
    digest     BLOB NOT NULL UNIQUE,
    created    INTEGER NOT NULL,
    last_used  INTEGER
);
"""
BUSY_TIMEOUT_MS: Final = 5_000


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What may be shown about a token: never its secret nor its digest. Times in Unix seconds."""

    name: str
    scope: Scope
    created: int
    last_used: int | None

    def as_json(self) -> dict[str, Any]:
        """The API's and the CLI's shape: times as ISO text (UTC)."""
        return {
            "name": self.name,
            "scope": self.scope.value,
            "created": to_iso(self.created * US_PER_S),
            "last_used": None if self.last_used is None else to_iso(self.last_used * US_PER_S),
        }


class TokenCatalogError(Exception):
    """Base of the catalog's refusals, each with a message ready for a user."""


class DuplicateToken(TokenCatalogError):
    """A token with that name exists (revoke it first)."""


class UnknownToken(TokenCatalogError):
    """No token has that name."""


class AuthStorageUnavailable(TokenCatalogError):
    """The database holding tokens or sessions did not answer (the message names no secret)."""


class TokenCatalogBackend(Protocol):
    """A token catalog: blocking calls, safe to share between threads."""

    @property
    def where(self) -> str:
        """Where the catalog lives, for logs and messages (a path or a schema; never a DSN)."""
        ...

    @property
    def shared(self) -> bool:
        """Whether other platform processes (replicas) use this catalog too."""
        ...

    def create(self, name: str, scope: Scope) -> str: ...
    def list(self) -> list[TokenInfo]: ...
    def revoke(self, name: str) -> None: ...
    def verify(self, secret: str) -> Identity | None: ...
    def identities(self) -> dict[bytes, Identity]: ...
    def data_version(self) -> int: ...
    def touch(self, last_used: Mapping[str, int]) -> None: ...
    def close(self) -> None: ...


def tokens_path(data_dir: Path) -> Path:
    return data_dir / TOKENS_FILE


def _create_private_file(path: Path) -> None:
    """Create the file readable by its owner only, before SQLite opens it (its -wal/-shm follow)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)


class TokenCatalog:
    """The SQLite catalog: `<data_dir>/auth.sqlite`, this platform process's own."""

    shared: Final = False

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            _create_private_file(path)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.executescript(SCHEMA)
        except sqlite3.Error as err:
            raise TokenCatalogError(f"cannot open the token catalog {path}: {err}") from err

    @property
    def where(self) -> str:
        return str(self.path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def create(self, name: str, scope: Scope) -> str:
        """A new token's secret: the only time it exists outside the caller's hands."""
        check_name(name)
        secret = new_token()
        try:
            with self._lock, self._conn:
                self._conn.execute(
                    "INSERT INTO api_tokens (name, scope, digest, created) VALUES (?, ?, ?, ?)",
                    (name, scope.value, token_digest(secret), int(time.time())),
                )
        except sqlite3.IntegrityError:
            raise DuplicateToken(f"a token named {name!r} exists; revoke it first") from None
        log.info("token_created", name=name, scope=scope.value)
        return secret

    def list(self) -> list[TokenInfo]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT name, scope, created, last_used FROM api_tokens ORDER BY name"
            ).fetchall()
        return [TokenInfo(name, Scope(scope), created, last_used) for name, scope, created, last_used in rows]

    def revoke(self, name: str) -> None:
        with self._lock, self._conn:
            gone = self._conn.execute("DELETE FROM api_tokens WHERE name = ?", (name,)).rowcount
        if not gone:
            raise UnknownToken(f"no token is named {name!r}; `plantwire token list` lists them")
        log.info("token_revoked", name=name)

    def verify(self, secret: str) -> Identity | None:
        """The token's identity, or None for anything that is not a current token."""
        if not looks_like_token(secret):
            return None
        digest = token_digest(secret)
        with self._lock:
            row = self._conn.execute(
                "SELECT name, scope, digest FROM api_tokens WHERE digest = ?", (digest,)
            ).fetchone()
        if row is None or not same_digest(row[2], digest):
            return None
        return Identity(row[0], Scope(row[1]))

    def identities(self) -> dict[bytes, Identity]:
        """Every current token by digest: what the platform keeps in memory to verify requests."""
        with self._lock:
            rows = self._conn.execute("SELECT name, scope, digest FROM api_tokens").fetchall()
        return {bytes(digest): Identity(name, Scope(scope)) for name, scope, digest in rows}

    def data_version(self) -> int:
        """Changes whenever another connection (the CLI, another process) committed to the file."""
        with self._lock:
            (version,) = self._conn.execute("PRAGMA data_version").fetchone()
        return int(version)

    def touch(self, last_used: Mapping[str, int]) -> None:
        """Record when tokens were last used, many at once (the platform batches them)."""
        if not last_used:
            return
        with self._lock, self._conn:
            self._conn.executemany(
                "UPDATE api_tokens SET last_used = max(coalesce(last_used, 0), ?) WHERE name = ?",
                [(ts, name) for name, ts in last_used.items()],
            )
