"""`plantwire token` as a script sees it: the new token alone on the last line, direct and over the API."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from auth_harness import Platform

from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.token_catalog import TokenCatalog, tokens_path
from plantwire_platform.auth.tokens import TOKEN_PATTERN


async def plantwire(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLANTWIRE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "plantwire",
        "--log-format",
        "json",
        "--log-level",
        "debug",
        "token",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**clean, **(env or {})},
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_create_prints_the_token_alone_on_the_last_line(tmp_path: Path) -> None:
    code, out, err = await plantwire(
        "create", "--name", "ci", "--scope", "operate", "--data-dir", str(tmp_path)
    )
    assert code == 0, err
    secret = out.splitlines()[-1]
    assert TOKEN_PATTERN.fullmatch(secret)
    assert secret not in err  # the logs (stderr, debug level) never show it
    catalog = TokenCatalog(tokens_path(tmp_path))
    identity = catalog.verify(secret)
    catalog.close()
    assert identity is not None and (identity.name, identity.scope) == ("ci", Scope.OPERATE)

    code, out, _ = await plantwire("list", "--data-dir", str(tmp_path))
    assert code == 0 and "ci" in out and "operate" in out and secret not in out
    code, out, _ = await plantwire("revoke", "ci", "--data-dir", str(tmp_path))
    assert code == 0
    code, _, err = await plantwire("revoke", "ci", "--data-dir", str(tmp_path))
    assert code == 1 and "no token is named 'ci'" in err


async def test_default_data_dir_is_the_platform_store_folder(tmp_path: Path) -> None:
    store = tmp_path / "plant" / "platform.sqlite"
    code, out, err = await plantwire(
        "create", "--name", "d", "--scope", "read", env={"PLANTWIRE_STORE__PATH": str(store)}
    )
    assert code == 0, err
    catalog = TokenCatalog(tokens_path(store.parent))
    assert catalog.verify(out.splitlines()[-1]) is not None
    catalog.close()


async def test_over_the_api_with_an_admin_token(api: Platform) -> None:
    env = {"PLANTWIRE_PLATFORM_URL": api.base, "PLANTWIRE_TOKEN": api.secrets["admin"]}
    code, out, err = await plantwire("create", "--name", "remote", "--scope", "read", env=env)
    assert code == 0, err
    secret = out.splitlines()[-1]
    assert (await api.request("GET", "/api/things", headers=api.bearer(secret)))[1]["by"] == "remote"
    code, out, _ = await plantwire("list", env=env)
    assert code == 0 and "remote" in out and secret not in out
    code, _, _ = await plantwire("revoke", "remote", env=env)
    assert code == 0
    assert (await api.request("GET", "/api/things", headers=api.bearer(secret)))[0] == 401

    weak = {**env, "PLANTWIRE_TOKEN": api.secrets["operate"]}
    code, _, err = await plantwire("create", "--name", "x", "--scope", "admin", env=weak)
    assert code == 1 and "'admin' scope" in err and api.secrets["operate"] not in err
    token_file = api.data_dir / "admin.token"
    token_file.write_text(api.secrets["admin"] + "\n")
    code, out, _ = await plantwire("list", "--platform", api.base, "--token-file", str(token_file))
    assert code == 0 and "admin-token" in out
