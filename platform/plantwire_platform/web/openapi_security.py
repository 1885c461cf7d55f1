"""The API's credentials in its OpenAPI document: a bearer scheme, and each operation's scope.

`add_security(doc, scopes)` marks every operation the middleware guards with
``security: [{"bearer": []}]`` and ``x-required-scope`` (read, operate or admin, also named in
its description); public ones (the probes) get ``security: []``. The scopes come from the running
app's declarations (`auth_middleware.route_scopes`), so the document says what is enforced.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from plantwire_platform.auth.scopes import Scope

BEARER: Final = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API token (`plantwire token create --name NAME --scope read|operate|admin`), "
    "sent as `Authorization: Bearer <token>`. Scopes nest: admin > operate > read.",
}

ERROR_CONTENT: Final = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def add_security(doc: dict[str, Any], scopes: Mapping[tuple[str, str], Scope | None]) -> dict[str, Any]:
    """A copy of `doc` with the bearer scheme and the scope of each (METHOD, path) in `scopes`;
    an operation missing from `scopes` needs admin (deny by default)."""
    out = copy.deepcopy(doc)
    out.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = BEARER
    for path, operations in out.get("paths", {}).items():
        for method, operation in operations.items():
            if method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
                operation.setdefault("responses", {}).setdefault(
                    "415",
                    {"description": "A body that is not JSON (Content-Type).", "content": ERROR_CONTENT},
                )
            needed = scopes.get((method.upper(), path), Scope.ADMIN)
            if needed is None:
                operation["security"] = []
                continue
            operation["security"] = [{"bearer": []}]
            operation["x-required-scope"] = needed.value
            note = f"Needs a token with the `{needed.value}` scope."
            description = operation.get("description")
            operation["description"] = f"{description}\n\n{note}" if description else note
            operation.setdefault("responses", {}).setdefault(
                "401", {"description": "No valid token.", "content": ERROR_CONTENT}
            )
            operation["responses"].setdefault(
                "403", {"description": "The token lacks the scope.", "content": ERROR_CONTENT}
            )
    return out
