"""A request's JSON object body, checked: against a model (`parse_body`) or a list of fields.

Unknown fields and missing ones are 400s that name them; a field of the wrong type or out of range
is a 422 that names it and says what is allowed. The parser's own exception text never reaches
the client.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from plantwire_platform.web.errors import ApiError
from plantwire_platform.web.query_params import MAX_ECHO

M = TypeVar("M", bound=BaseModel)


async def _object(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise ApiError(400, "bad_request", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return body


async def json_object(
    request: web.Request, allowed: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    body = await _object(request)
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(
            400, "bad_request", f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )
    missing = [k for k in required if k not in body]
    if missing:
        raise ApiError(400, "bad_request", f"missing field(s): {', '.join(missing)}")
    return body


def _where(err: ErrorDetails) -> str:
    out = ""
    for part in err["loc"]:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _body_error(errors: list[ErrorDetails], model: type[BaseModel]) -> ApiError:
    allowed = ", ".join(model.model_fields)
    unknown = sorted(_where(e) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return ApiError(400, "bad_request", f"unknown field(s) {', '.join(unknown)}; allowed: {allowed}")
    missing = [_where(e) for e in errors if e["type"] == "missing"]
    if missing:
        return ApiError(400, "bad_request", f"missing field(s): {', '.join(missing)}")
    err = errors[0]
    given = repr(err.get("input"))
    if len(given) > MAX_ECHO:
        given = given[: MAX_ECHO - 3] + "..."
    return ApiError(422, "invalid_field", f"'{_where(err)}' is not allowed ({given}): {err['msg']}")


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The body as `model`: 400 for a body that is not a JSON object or has unknown or missing fields,
    422 for a field of the wrong type or out of range."""
    body = await _object(request)
    try:
        return model.model_validate(body)
    except ValidationError as err:
        raise _body_error(err.errors(include_url=False), model) from None
