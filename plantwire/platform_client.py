"""The one client of the platform's REST API for the command line (`attach`, `detach`, `devices`, ...).

Standard library only (urllib): these commands run once and exit. The platform is found from
`--platform URL`, else `PLANTWIRE_PLATFORM_URL`, else http://127.0.0.1:8080; a token from `--token`,
else `PLANTWIRE_TOKEN`, goes out as `Authorization: Bearer <token>` and is never printed or sent on
to a host a redirect names. Every failure becomes one line for the user: `PlatformSetupError` for a
bad URL or token (exit 2), `PlatformCallError` for an unreachable platform or an API error (exit 1).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import SecretStr

from plantwire import __version__

PAGE: Final = 1000
"""Gateways or devices per request when a command reads a whole list (the API's largest page)."""

DEFAULT_PLATFORM: Final = "http://127.0.0.1:8080"
PLATFORM_URL_ENV: Final = "PLANTWIRE_PLATFORM_URL"
TOKEN_ENV: Final = "PLANTWIRE_TOKEN"


class PlatformCallError(Exception):
    """The platform answered with an error, or could not be reached (exit code 1)."""

    exit_code = 1


class PlatformSetupError(PlatformCallError):
    """The platform URL or the token cannot be used as given (exit code 2)."""

    exit_code = 2


def add_platform_arguments(parser: argparse.ArgumentParser) -> None:
    """--platform and --token, the same for every command that talks to the platform."""
    group = parser.add_argument_group("platform")
    group.add_argument(
        "--platform",
        metavar="URL",
        help=f"platform API (default: ${PLATFORM_URL_ENV}, else {DEFAULT_PLATFORM})",
    )
    group.add_argument(
        "--token",
        metavar="TOKEN",
        help=f"sent as 'Authorization: Bearer TOKEN' (default: ${TOKEN_ENV}; prefer the variable, "
        "a command line is visible to other users)",
    )


def platform_url(given: str | None, env: Mapping[str, str]) -> str:
    """The platform's base URL from --platform, else the environment, else the default; checked."""
    source = "--platform" if given else PLATFORM_URL_ENV
    url = (given or env.get(PLATFORM_URL_ENV) or DEFAULT_PLATFORM).strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    # Not echoed: a user, password or query string may hold a secret.
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise PlatformSetupError(
            f"{source}: a URL with a user, password or query is not accepted; "
            f"give a token with --token or {TOKEN_ENV}"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise PlatformSetupError(f"{source} {url!r} is not a platform URL like {DEFAULT_PLATFORM}")
    return url


def bearer_token(given: str | None, env: Mapping[str, str]) -> SecretStr | None:
    """The token from --token, else the environment; None when neither is set (or set empty)."""
    raw = given if given is not None else env.get(TOKEN_ENV)
    if raw is None or not raw.strip():
        return None
    token = raw.strip()
    if not all(33 <= ord(c) <= 126 for c in token):
        source = "--token" if given is not None else TOKEN_ENV
        raise PlatformSetupError(f"{source}: the token has characters an HTTP header cannot carry")
    return SecretStr(token)


@dataclass(frozen=True)
class PlatformClient:
    """Calls to one platform with an optional token (the audit records the token's name)."""

    base: str
    token: SecretStr | None = None
    timeout: float = 30.0

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> PlatformClient:
        return cls(
            base=platform_url(args.platform, env),
            token=bearer_token(args.token, env),
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request; the JSON object answered, or PlatformCallError with the API's own message."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        req.add_header("User-Agent", f"plantwire/{__version__}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token is not None:
            # Unredirected: urllib copies ordinary headers to wherever a redirect points.
            req.add_unredirected_header("Authorization", f"Bearer {self.token.get_secret_value()}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            raise PlatformCallError(_problem(err, self.base + path)) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            reason = getattr(err, "reason", None) or err
            raise PlatformCallError(f"cannot reach the platform at {self.base}: {reason}") from None
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise PlatformCallError(
                f"{self.base} answered {method} {path} with something other than the platform's JSON; "
                f"is it the platform's URL? (--platform or {PLATFORM_URL_ENV})"
            )
        return answer

    def gateways(self, devices: int = 0) -> list[dict[str, Any]]:
        """Every gateway, page after page, each with at most `devices` of its devices listed."""
        out: list[dict[str, Any]] = []
        while True:
            query = urllib.parse.urlencode({"offset": len(out), "limit": PAGE, "devices": devices})
            page = self.call("GET", f"/api/gateways?{query}")
            out.extend(page["gateways"])
            # `total` missing: a platform from before paging, which answered every gateway at once.
            if "total" not in page or not page["gateways"] or len(out) >= page["total"]:
                return out

    def devices(self, gateway: str | None = None) -> Iterator[dict[str, Any]]:
        """Every device (of `gateway`), page after page of `GET /api/devices`, ordered by id."""
        offset = 0
        while True:
            params: dict[str, Any] = {"offset": offset, "limit": PAGE}
            if gateway is not None:
                params["gateway"] = gateway
            page = self.call("GET", f"/api/devices?{urllib.parse.urlencode(params)}")
            yield from page["devices"]
            offset += len(page["devices"])
            if not page["devices"] or offset >= page["total"]:
                return

    def only_gateway(self) -> str:
        """The gateway to use when none is given: the one online gateway, else an error listing them."""
        gateways = self.gateways()
        online = [g["id"] for g in gateways if g["state"] == "online"]
        if len(online) == 1:
            return str(online[0])
        listed = ", ".join(f"{g['id']} ({g['state']})" for g in gateways) or "none"
        raise PlatformCallError(f"choose a gateway with --gateway; gateways: {listed}")


def _problem(err: urllib.error.HTTPError, url: str) -> str:
    """The API's error message; a bare HTTP status means something else answered."""
    try:
        problem = json.loads(err.read())["error"]
        return f"{problem['message']} (HTTP {err.code} {problem['code']})"
    except (ValueError, KeyError, TypeError, OSError):
        return (
            f"HTTP {err.code} {err.reason} from {url}; "
            f"is it the platform's URL? (--platform or {PLATFORM_URL_ENV})"
        )


def run_with_platform(
    command: str, args: argparse.Namespace, body: Callable[[PlatformClient], list[str]]
) -> int:
    """Run a command's `body` against the platform: its lines to stdout, or one error line and 1 or 2."""
    try:
        lines = body(PlatformClient.from_args(args))
    except PlatformCallError as err:
        print(f"plantwire {command}: {err}", file=sys.stderr)
        return err.exit_code
    for line in lines:
        print(line)
    return 0
