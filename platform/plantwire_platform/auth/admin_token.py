"""The demo's admin token: created once, kept in ``<data-dir>/admin.token`` (mode 0600).

The file is the only copy of the secret (the catalog keeps its digest). On a catalog of this
process's own (SQLite, in the same data dir), a lost or stale file means the secret is lost: the
token is replaced (a new secret, the same name).

On a catalog shared by replicas (PostgreSQL), each replica has its own data dir, so a missing file
here does not mean the secret is lost: the first replica to call this creates the token and writes
its file; any other finds the name taken and gets `AdminTokenElsewhere` (nothing is revoked, the
first replica's file stays valid). Use that file, or make an admin token of its own with
`plantwire token create --scope admin`. Two replicas starting at once cannot both create it: the
name is the table's key.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

from plantwire.logs import get_logger
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.token_catalog import (
    DuplicateToken,
    TokenCatalogBackend,
    TokenCatalogError,
    UnknownToken,
)

log = get_logger(__name__)

ADMIN_TOKEN_FILE: Final = "admin.token"
ADMIN_TOKEN_NAME: Final = "demo-admin"


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by the owner only; atomically, so a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def read_token_file(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip() or None
    except (FileNotFoundError, UnicodeDecodeError):
        return None


class AdminTokenElsewhere(TokenCatalogError):
    """On a shared catalog: the admin token exists, made by a replica whose file this is not."""


def ensure_admin_token(catalog: TokenCatalogBackend, path: Path, name: str = ADMIN_TOKEN_NAME) -> str:
    """The admin token's secret: the one in `path` if it is still valid, else a new one written there
    (on a shared catalog, only while no token has that name; else `AdminTokenElsewhere`)."""
    secret = read_token_file(path)
    if secret is not None:
        identity = catalog.verify(secret)
        if identity is not None and identity.name == name and identity.scope is Scope.ADMIN:
            os.chmod(path, 0o600)
            return secret
    if catalog.shared:
        try:
            secret = catalog.create(name, Scope.ADMIN)
        except DuplicateToken:
            raise AdminTokenElsewhere(
                f"the admin token {name!r} exists in the shared catalog ({catalog.where}) and {path} "
                "does not hold it: it is in the data dir of the replica that made it; use that file, "
                "or `plantwire token create --scope admin` for one of this replica's own"
            ) from None
        write_private(path, secret)
        log.info("admin_token_written", name=name, path=str(path))
        return secret
    with contextlib.suppress(UnknownToken):
        catalog.revoke(name)
    secret = catalog.create(name, Scope.ADMIN)
    write_private(path, secret)
    log.info("admin_token_written", name=name, path=str(path))
    return secret
