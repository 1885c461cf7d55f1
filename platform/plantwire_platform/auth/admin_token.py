"""The demo's admin token: created once, kept in ``<data-dir>/admin.token`` (mode 0600).

The file is the only copy of the secret (the catalog keeps its digest). When the file is lost or
no longer matches, the token is replaced: a new secret, the same name.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

from plantwire.logs import get_logger
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.token_catalog import TokenCatalog, UnknownToken

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


def ensure_admin_token(catalog: TokenCatalog, path: Path, name: str = ADMIN_TOKEN_NAME) -> str:
    """The admin token's secret: the one in `path` if it is still valid, else a new one written there."""
    secret = read_token_file(path)
    if secret is not None:
        identity = catalog.verify(secret)
        if identity is not None and identity.name == name and identity.scope is Scope.ADMIN:
            os.chmod(path, 0o600)
            return secret
    with contextlib.suppress(UnknownToken):
        catalog.revoke(name)
    secret = catalog.create(name, Scope.ADMIN)
    write_private(path, secret)
    log.info("admin_token_written", name=name, path=str(path))
    return secret
