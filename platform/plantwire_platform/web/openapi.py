"""The OpenAPI 3.1 document of the REST API, generated from the route table and its models.

Every operation of `web.api_operations.OPERATIONS` becomes a path entry: its query and path
parameters from the fields of its parameter models, its body and answers as JSON Schemas of its
models (pydantic writes JSON Schema 2020-12, the dialect of OpenAPI 3.1) under
`components/schemas`. The probes (`web.health`) and the WebSocket stream (`web.stream`) add their
own entries: a text answer and an upgrade are not JSON models. The handlers parse requests with
the same models, so the document describes what the server checks.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from plantwire_platform.web.api_models.common import Error
from plantwire_platform.web.api_operations import OPERATIONS, Operation
from plantwire_platform.web.health import openapi_paths as health_openapi_paths
from plantwire_platform.web.openapi_handles import HANDLE_PATHS
from plantwire_platform.web.stream import openapi_paths as stream_openapi_paths

JSON: Final = "application/json"
REF_TEMPLATE: Final = "#/components/schemas/{model}"
_COMMON_ERRORS: Final = {
    400: "Unknown, repeated, missing or bad parameter, or a bad body (not JSON, not an object, a "
    "missing or unknown field).",
    500: "Internal error (details only in the server log).",
}


Refs: TypeAlias = dict[tuple[type[BaseModel], str], Any]
"""(model, mode) -> its {"$ref": ...} in the document."""


def _schemas(operations: tuple[Operation, ...]) -> tuple[Refs, Any]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Error, "serialization")]
    for op in operations:
        wanted += [(m, "serialization") for m in op.ok]
        wanted += [(m, "serialization") for _, _, m in op.more_ok]
        if op.body is not None:
            wanted.append((op.body, "validation"))
    unique = list(dict.fromkeys(wanted))
    refs, defs = models_json_schema(unique, ref_template=REF_TEMPLATE)
    out: Refs = {}
    for (model, mode), ref in refs.items():
        assert isinstance(model, type) and issubclass(model, BaseModel)
        out[(model, mode)] = ref
    return out, defs.get("$defs", {})


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema: an optional field's `anyOf [X, null]` becomes X (absent means None)."""
    branches = schema.get("anyOf")
    if branches is None:
        return schema
    kept = [b for b in branches if b != {"type": "null"}]
    out = {k: v for k, v in schema.items() if k != "anyOf"}
    if out.get("default", 0) is None:
        del out["default"]
    return {**(kept[0] if len(kept) == 1 else {"anyOf": kept}), **out}


def _parameters(model: type[BaseModel], where: str) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null({k: v for k, v in prop.items() if k != "title"})
        param: dict[str, Any] = {"name": name, "in": where, "required": name in required or where == "path"}
        if "description" in prop:
            param["description"] = prop.pop("description")
        out.append({**param, "schema": prop})
    return out


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def _operation(op: Operation, refs: Refs) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    if op.path_params is not None:
        params += _parameters(op.path_params, "path")
    if op.query is not None:
        params += _parameters(op.query, "query")
    ok_refs = [refs[(m, "serialization")] for m in op.ok]
    ok: dict[str, Any] = {
        "description": "OK",
        "content": _content(ok_refs[0] if len(ok_refs) == 1 else {"oneOf": ok_refs}),
    }
    if op.links:
        ok["links"] = {
            link.name: {"operationId": link.operation_id, "parameters": dict(link.parameters)}
            for link in op.links
        }
    responses: dict[str, Any] = {str(op.ok_status): ok}
    for status, text, model in op.more_ok:
        responses[str(status)] = {"description": text, "content": _content(refs[(model, "serialization")])}
    error_ref = refs[(Error, "serialization")]
    for status, text in sorted({**_COMMON_ERRORS, **op.errors}.items()):
        responses[str(status)] = {"description": text, "content": _content(error_ref)}
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": params,
        "responses": responses,
    }
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": _content(refs[(op.body, "validation")])}
    return out


def openapi_paths(operations: tuple[Operation, ...] = OPERATIONS) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `paths` and `components/schemas` of `operations`."""
    refs, defs = _schemas(operations)
    paths: dict[str, Any] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return paths, defs


def openapi_document(version: str) -> dict[str, Any]:
    paths, schemas = openapi_paths()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Plantwire platform API",
            "version": version,
            "description": "Devices, tags and stored values of the plant. Times are ISO 8601 UTC with "
            "microseconds and a Z. Every error has the Error shape. Unknown query parameters are "
            "rejected with 400 so that typos do not pass unnoticed.",
        },
        "paths": {**paths, **health_openapi_paths(), **stream_openapi_paths(), **HANDLE_PATHS},
        "components": {"schemas": schemas},
    }
