"""`plantwire token`: create, list and revoke the platform's API tokens.

Two ways to reach the catalog:
- directly: where the platform's settings (its PLANTWIRE_* environment) put it. With the PostgreSQL
  store (``PLANTWIRE_STORE__BACKEND=postgresql``), the catalog is in the store's schema, shared by
  every replica; otherwise in the platform's data dir (``--data-dir``, default: the folder of the
  platform's store file, ``PLANTWIRE_STORE__PATH`` or var/platform/). Works whether the platform
  runs or not; running platforms notice the change within a second;
- over the API (``--platform URL`` or ``PLANTWIRE_PLATFORM_URL``) with an admin token
  (``PLANTWIRE_TOKEN``, ``--token-file`` or ``--token``; the environment or a file keep it out of
  the process list).

`create` prints the new token alone on the last line of its output (scripts take ``tail -n 1``).
The token is shown this once: only its SHA-256 digest is stored.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from plantwire.platform_client import (
    PLATFORM_URL_ENV,
    TOKEN_ENV,
    PlatformCallError,
    PlatformClient,
    platform_url,
)

if TYPE_CHECKING:
    from plantwire_platform.auth.auth_database import AuthDatabase
    from plantwire_platform.auth.token_catalog import TokenCatalogBackend

HELP = "create, list and revoke API tokens (read, operate, admin)"
DESCRIPTION = """\
Manage the tokens that the platform's REST API, stream and dashboard accept.

  plantwire token create --name grafana --scope read    # the token is the last line
  plantwire token list
  plantwire token revoke grafana

Scopes: read (GET, stream) < operate (write, call, ack alarms) < admin (attach/detach, apps,
tokens). Without --platform the catalog is changed directly: in the platform's data dir, or in
its PostgreSQL schema when PLANTWIRE_STORE__BACKEND=postgresql (shared by every replica).
"""

SCOPES = ("read", "operate", "admin")


class TokenCommandError(Exception):
    """A refusal ready to print."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a token and print it (last line)")
    create.add_argument("--name", required=True, help="who or what the token is for (the audit shows it)")
    create.add_argument("--scope", required=True, choices=SCOPES)
    sub.add_parser("list", help="list tokens: name, scope, created, last used (never secrets)")
    revoke = sub.add_parser("revoke", help="revoke a token; it stops working at once")
    revoke.add_argument("name")
    for p in sub.choices.values():
        p.add_argument("--data-dir", type=Path, help="the platform's data dir (default: its store's folder)")
        p.add_argument("--platform", metavar="URL", help="use the API of this platform (admin token)")
        p.add_argument("--token-file", type=Path, help="file holding the admin token (e.g. admin.token)")
        p.add_argument("--token", help="admin token (prefer PLANTWIRE_TOKEN: argv is visible to others)")


def default_data_dir() -> Path:
    from plantwire_platform.settings import StoreSettings

    store = os.environ.get("PLANTWIRE_STORE__PATH")
    return (Path(store) if store else StoreSettings().path).parent


def _admin_token(args: argparse.Namespace) -> str:
    if args.token:
        return str(args.token)
    if args.token_file:
        try:
            return args.token_file.read_text(encoding="ascii").strip()
        except OSError as err:
            raise TokenCommandError(f"cannot read {args.token_file}: {err.strerror}") from None
    env = os.environ.get(TOKEN_ENV)
    if env:
        return env
    raise TokenCommandError("the API needs an admin token: set PLANTWIRE_TOKEN or give --token-file")


def api_call(base: str, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
    """One authenticated JSON call through the CLI's platform client; a failure becomes
    TokenCommandError with the API's message."""
    try:
        client = PlatformClient(platform_url(base, {}), SecretStr(token))
        return client.call(method, path, body)
    except PlatformCallError as err:
        raise TokenCommandError(str(err)) from None


def _rows(tokens: list[dict[str, Any]]) -> list[str]:
    rows = [("NAME", "SCOPE", "CREATED", "LAST USED")]
    rows += [(t["name"], t["scope"], t["created"], t["last_used"] or "never") for t in tokens]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _over_api(args: argparse.Namespace, base: str) -> list[str]:
    token = _admin_token(args)
    if args.token_command == "create":
        made = api_call(base, "POST", "/api/tokens", token, {"name": args.name, "scope": args.scope})
        return _created(made["name"], made["scope"], made["token"])
    if args.token_command == "list":
        return _rows(api_call(base, "GET", "/api/tokens", token)["tokens"])
    api_call(base, "DELETE", f"/api/tokens/{urllib.parse.quote(args.name, safe='')}", token)
    return [f"revoked token {args.name!r}"]


def _shared_database() -> AuthDatabase | None:
    """The PostgreSQL schema holding the tokens, when the platform's settings select that store."""
    from plantwire.config import ConfigError
    from plantwire_platform.settings import environment_auth_database

    try:
        return environment_auth_database()
    except ConfigError as err:
        raise TokenCommandError(f"the platform's settings: {err}") from None


def _open_catalog(args: argparse.Namespace) -> TokenCatalogBackend:
    from plantwire_platform.auth.api_auth import open_token_catalog
    from plantwire_platform.auth.token_catalog import TokenCatalogError, tokens_path

    database = _shared_database()
    data_dir = args.data_dir or default_data_dir()
    if database is not None and args.data_dir:
        raise TokenCommandError(
            "the platform's settings select PostgreSQL: its tokens are in the store's schema, "
            "not in a data dir; leave out --data-dir"
        )
    if database is None and args.token_command != "create" and not tokens_path(data_dir).exists():
        raise TokenCommandError(
            f"no token catalog at {tokens_path(data_dir)}; is --data-dir the platform's data dir?"
        )
    try:
        return open_token_catalog(data_dir, database)
    except TokenCatalogError as err:
        raise TokenCommandError(str(err)) from None


def _direct(args: argparse.Namespace) -> list[str]:
    from plantwire_platform.auth.scopes import Scope
    from plantwire_platform.auth.token_catalog import TokenCatalogError
    from plantwire_platform.auth.tokens import InvalidTokenName

    catalog = _open_catalog(args)
    try:
        if args.token_command == "create":
            return _created(args.name, args.scope, catalog.create(args.name, Scope(args.scope)))
        if args.token_command == "list":
            return _rows([t.as_json() for t in catalog.list()])
        catalog.revoke(args.name)
        return [f"revoked token {args.name!r}"]
    except (TokenCatalogError, InvalidTokenName) as err:
        raise TokenCommandError(str(err)) from None
    finally:
        catalog.close()


def _created(name: str, scope: str, secret: str) -> list[str]:
    return [f"created token {name!r} with scope {scope}; it is shown only now, keep it safe:", secret]


def run(args: argparse.Namespace) -> int:
    base = args.platform or os.environ.get(PLATFORM_URL_ENV)
    try:
        if base and args.data_dir:
            raise TokenCommandError("give either --platform (over the API) or --data-dir (directly)")
        lines = _over_api(args, base) if base else _direct(args)
    except TokenCommandError as err:
        print(f"plantwire token: {err}", file=sys.stderr)
        return 1
    print("\n".join(lines), flush=True)
    return 0
