"""A tiny blocking client for the platform's REST API, for the `attach`, `detach` and `devices` commands.

Standard library only (urllib): these commands run once and exit. Every failure becomes
`PlatformCallError` with the API's own error message, ready to print.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Final

DEFAULT_PLATFORM: Final = "http://127.0.0.1:8080"
USER_HEADER: Final = "X-Plantwire-User"


class PlatformCallError(Exception):
    """The platform answered with an error, or could not be reached."""


def call(
    base: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    user: str | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if user:
        req.add_header(USER_HEADER, user)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}")  # type: ignore[no-any-return]
    except urllib.error.HTTPError as err:
        try:
            problem = json.loads(err.read())["error"]
            message = f"{problem['message']} (HTTP {err.code} {problem['code']})"
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {err.code} {err.reason}"
        raise PlatformCallError(message) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise PlatformCallError(f"cannot reach the platform at {base}: {reason}") from None


def add_platform_argument(parser: Any) -> None:
    parser.add_argument(
        "--platform",
        default=DEFAULT_PLATFORM,
        metavar="URL",
        help=f"platform API (default {DEFAULT_PLATFORM})",
    )
    parser.add_argument("--user", metavar="NAME", help="who you are, for the audit log")


def only_gateway(base: str) -> str:
    """The gateway to use when none is given: the one online gateway, else an error that lists them."""
    gateways = call(base, "GET", "/api/gateways")["gateways"]
    online = [g["id"] for g in gateways if g["state"] == "online"]
    if len(online) == 1:
        return str(online[0])
    listed = ", ".join(f"{g['id']} ({g['state']})" for g in gateways) or "none"
    raise PlatformCallError(f"choose a gateway with --gateway; gateways: {listed}")
