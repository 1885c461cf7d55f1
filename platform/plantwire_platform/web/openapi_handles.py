"""OpenAPI paths of the identifier routes (web/handle_routes.py), merged by openapi.py.

Bodies follow the Handle.Net REST shape (`responseCode` first); docs/identifiers.md describes
the codes. Credentials: `Authorization: Bearer <token>` or Basic as `300:<prefix>/ADMIN`.
"""

from __future__ import annotations

from typing import Any, Final

from plantwire_platform.web.handle_routes import MAX_PAGE, MAX_PAGE_SIZE

JSON: Final = "application/json"
_HS_BODY: Final = {
    "type": "object",
    "properties": {"responseCode": {"type": "integer", "examples": [1, 100, 200]}},
    "required": ["responseCode"],
    "description": "Handle.Net REST answer: responseCode, handle, values (or handles when listing).",
}
_ANSWERS: Final = {
    "200": "Found (responseCode 1), or no value matched (200)",
    "400": "Bad request or invalid handle (4, 102, 301)",
    "401": "Authentication needed (402)",
    "403": "Insufficient permissions (400)",
    "404": "Handle not found (100)",
    "409": "Handle or value exists (101, 201)",
    "502": "Upstream resolver failed (2)",
}


def _param(name: str, where: str, example: Any, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": schema, "example": example}


_PATH: Final = [
    _param("prefix", "path", "0.TEST", type="string"),
    _param("suffix", "path", "device.cnc-1", type="string"),
]


def _op(op_id: str, summary: str, params: list[dict[str, Any]], statuses: tuple[str, ...]) -> dict[str, Any]:
    responses = {s: {"description": _ANSWERS[s], "content": {JSON: {"schema": _HS_BODY}}} for s in statuses}
    return {"operationId": op_id, "summary": summary, "parameters": params, "responses": responses}


HANDLE_PATHS: Final[dict[str, Any]] = {
    "/api/handles": {
        "get": _op(
            "listHandles",
            "List the handles of a prefix (token: read)",
            [
                _param("prefix", "query", "0.TEST", type="string"),
                _param("page", "query", 0, type="integer", minimum=0, maximum=MAX_PAGE),
                _param("pageSize", "query", 1000, type="integer", minimum=1, maximum=MAX_PAGE_SIZE),
            ],
            ("200", "400", "401", "403"),
        )
    },
    "/api/handles/{prefix}/{suffix}": {
        "get": _op(
            "resolveHandle",
            "Resolve a handle; values with a scope only with a token; other prefixes are relayed",
            [
                *_PATH,
                _param("type", "query", "URL", type="string"),
                _param("index", "query", 1, type="integer"),
            ],
            ("200", "400", "404", "502"),
        ),
        "put": _op(
            "putHandle",
            "Create or replace a handle; with ?index=... only the values sent (token: admin)",
            [
                *_PATH,
                _param("overwrite", "query", "true", type="string"),
                _param("index", "query", 2, type="integer"),
            ],
            ("200", "400", "401", "403", "404", "409"),
        ),
        "delete": _op("deleteHandle", "Delete a handle (token: admin)", _PATH, ("200", "401", "403", "404")),
    },
    "/api/handles/{prefix}/{suffix}/qr.svg": {
        "get": {
            "operationId": "handleQrCode",
            "summary": "An SVG QR code of the handle's resolution URL",
            "parameters": _PATH,
            "responses": {
                "200": {
                    "description": "The QR code",
                    "content": {"image/svg+xml": {"schema": {"type": "string"}}},
                },
                "400": {"description": _ANSWERS["400"], "content": {JSON: {"schema": _HS_BODY}}},
            },
        }
    },
    "/api/identifiers/sync": {
        "post": _op(
            "syncIdentifiers",
            "Register new or changed identifiers at the second-level node (token: admin)",
            [],
            ("200", "401", "403", "502"),
        )
    },
}
