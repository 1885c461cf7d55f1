"""`plantwire ids`: resolve, list and sync identifiers through the platform's Handle REST API.

    plantwire ids resolve 0.TEST/device.cnc-1      the record, one value a line
    plantwire ids list [--prefix P]                every identifier under the prefix
    plantwire ids sync                             register new identifiers at the second-level node

The platform comes from `--platform` or PLANTWIRE_PLATFORM_URL, the API token from `--token` or
PLANTWIRE_TOKEN (sent as `Authorization: Bearer`; needed for list, sync and restricted values).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any, Final
from urllib.parse import quote, urlencode

from plantwire.platform_client import DEFAULT_PLATFORM

HELP = "resolve, list and sync identifiers (Handle System)"
DESCRIPTION = __doc__ or ""
PAGE_SIZE: Final = 1000


class IdsCallError(Exception):
    """The platform answered with an error, or could not be reached."""


def call(base: str, method: str, path: str, token: str | None, timeout: float = 60.0) -> dict[str, Any]:
    """One request; Handle-shaped errors become IdsCallError with the response code."""
    req = urllib.request.Request(base.rstrip("/") + path, method=method)
    req.add_header("Accept", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}")  # type: ignore[no-any-return]
    except urllib.error.HTTPError as err:
        try:
            body = json.loads(err.read())
            code = body.get("responseCode")
            hints = {100: "not found", 402: "a token is needed (--token or PLANTWIRE_TOKEN)"}
            detail = hints.get(code) or body.get("message") or "refused"
            message = f"{detail} (HTTP {err.code}, responseCode {code})"
        except (ValueError, AttributeError):
            message = f"HTTP {err.code} {err.reason}"
        raise IdsCallError(message) from None
    except (urllib.error.URLError, OSError) as err:
        raise IdsCallError(f"cannot reach the platform at {base}: {getattr(err, 'reason', err)}") from None


def _connection_arguments() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--platform",
        default=os.environ.get("PLANTWIRE_PLATFORM_URL", DEFAULT_PLATFORM),
        metavar="URL",
        help=f"platform API (default PLANTWIRE_PLATFORM_URL or {DEFAULT_PLATFORM})",
    )
    common.add_argument("--token", default=None, help="API token (default PLANTWIRE_TOKEN)")
    return common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = _connection_arguments()
    sub = parser.add_subparsers(dest="ids_command", metavar="ACTION", required=True)
    resolve = sub.add_parser("resolve", parents=[common], help="show an identifier's values")
    resolve.add_argument("identifier", help="prefix/suffix, e.g. 0.TEST/device.cnc-1")
    resolve.add_argument("--json", action="store_true", help="print the API's JSON")
    listing = sub.add_parser("list", parents=[common], help="list identifiers under a prefix")
    listing.add_argument("--prefix", default=None, help="default: the platform's own prefix")
    listing.add_argument(
        "--page-size", type=int, default=PAGE_SIZE, help=f"per request (default {PAGE_SIZE})"
    )
    sub.add_parser(
        "sync", parents=[common], help="register not-yet-synced identifiers at the second-level node"
    )


def _value_text(value: dict[str, Any]) -> str:
    data = value.get("data", {})
    inner = data.get("value") if isinstance(data, dict) else data
    return inner if isinstance(inner, str) else json.dumps(inner, sort_keys=True)


def resolve(base: str, token: str | None, identifier: str, as_json: bool) -> list[str]:
    body = call(base, "GET", "/api/handles/" + quote(identifier.removeprefix("hdl:"), safe="/"), token)
    if as_json:
        return [json.dumps(body, indent=2)]
    lines = [str(body["handle"])]
    for v in body.get("values", []):
        lines.append(f"  {v['index']:>4}  {v['type']:<24} {_value_text(v)}")
    return lines


def list_all(base: str, token: str | None, prefix: str | None, page_size: int = PAGE_SIZE) -> list[str]:
    names: list[str] = []
    page = 0
    while True:
        query = {"page": page, "pageSize": page_size, **({"prefix": prefix} if prefix else {})}
        body = call(base, "GET", "/api/handles?" + urlencode(query), token)
        names.extend(body.get("handles", []))
        if len(names) >= int(body.get("totalCount", 0)) or not body.get("handles"):
            return names
        page += 1


def run(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("PLANTWIRE_TOKEN") or None
    try:
        if args.ids_command == "resolve":
            lines = resolve(args.platform, token, args.identifier, args.json)
        elif args.ids_command == "list":
            lines = list_all(args.platform, token, args.prefix, args.page_size)
        else:
            body = call(args.platform, "POST", "/api/identifiers/sync", token, timeout=600.0)
            lines = [
                f"registered {body['registered']}, already there {body['already']}, failed {body['failed']}"
            ]
            if body["failed"]:
                print("\n".join(lines))
                return 1
    except IdsCallError as err:
        print(f"plantwire ids {args.ids_command}: {err}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0
