"""The demo's way into its own platform: an admin token on disk, a one-time dashboard link, the banner.

Before the platform starts, `demo_admin_token` makes (or reuses) the admin token in the demo's
data dir: its secret in ``<data-dir>/admin.token`` (mode 0600), its digest in the platform's token
catalog next to the store. The demo polls readiness with it, then asks the platform for a one-time
login link (`login_link`) so the printed dashboard address logs the browser in; the banner's
curl and CLI examples read the token from the file, so the secret is typed nowhere.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Final

import aiohttp

from plantwire_platform.auth.admin_token import ADMIN_TOKEN_FILE, ensure_admin_token
from plantwire_platform.auth.api_auth import open_token_catalog
from plantwire_platform.settings import environment_auth_database

LOGIN_LINKS_PATH: Final = "/api/login-links"


class LoginLinkError(RuntimeError):
    """The platform would not make a login link for the admin token."""


def demo_admin_token(data_dir: Path) -> str:
    """The secret of the demo's admin token, valid in the catalog of the store in `data_dir` (or, when
    the environment selects the PostgreSQL store, in its schema)."""
    catalog = open_token_catalog(data_dir, environment_auth_database())
    try:
        return ensure_admin_token(catalog, data_dir / ADMIN_TOKEN_FILE)
    finally:
        catalog.close()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def login_link(http: aiohttp.ClientSession, base: str, secret: str) -> str:
    """A one-time dashboard login address (``<base>/login?once=...``) standing for `secret`."""
    try:
        async with http.post(base + LOGIN_LINKS_PATH, json={}, headers=bearer(secret)) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 201 or not isinstance(body, dict) or not isinstance(body.get("path"), str):
                raise LoginLinkError(f"the platform answered {resp.status} to {LOGIN_LINKS_PATH}")
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise LoginLinkError(f"no login link: {err}") from err
    return base + body["path"]


def auth_banner(base: str, data_dir: Path, secret: str, link: str) -> list[str]:
    """The banner's lines about getting in: the login link, the token, curl and CLI examples."""
    token_file = shlex.quote(str(data_dir / ADMIN_TOKEN_FILE))
    auth = f'-H "Authorization: Bearer $(cat {token_file})"'
    return [
        f"Open the dashboard: {base}/",
        f"  one-time login link: {link}",
        f"  admin token (also in {token_file}, mode 0600): {secret}",
        "",
        "Look at live data (every API call needs the token):",
        f"  curl {auth} {base}/api/devices",
        f"  curl {auth} '{base}/api/latest?device=cnc-1'",
        f"  curl {auth} '{base}/api/series?device=pump-1&tag=Hydraulics/Flow&start=-5m&every=10s&agg=avg'",
        f"  PLANTWIRE_TOKEN=$(cat {token_file}) plantwire devices --platform {base}",
    ]
