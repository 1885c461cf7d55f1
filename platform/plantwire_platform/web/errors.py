"""One error shape for the whole API, whatever went wrong.

Every error response is ``{"error": {"status": 400, "code": "invalid_parameter", "message": "..."}}``.
Handlers raise `ApiError` (or let `ParamError` escape), services raise their typed errors (a
command's `CommandError` carries its status and code, a `StoreError` is a 503); the middleware
maps each to that shape, and also turns aiohttp's own
HTTP exceptions (unknown route, wrong method) and anything unexpected into that shape. An
unexpected exception is logged with its traceback and answered with a generic 500: internals
never reach the client.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from plantwire.logs import get_logger
from plantwire_platform.auth.token_catalog import AuthStorageUnavailable
from plantwire_platform.commands.errors import CommandError
from plantwire_platform.store.model import StoreError
from plantwire_platform.web.query_params import ParamError
from plantwire_platform.web.responses import json_response

log = get_logger(__name__)

_CODES: Final[dict[int, str]] = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error answer decided by a handler (unknown device, bad parameter, ...)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response(
        {"error": {"status": status, "code": code, "message": message}}, status=status, headers=headers
    )


def _http_exception_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    status = exc.status
    code = _CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    headers: dict[str, str] = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        headers["Allow"] = ", ".join(allowed)
        message = f"method {request.method} is not allowed on {request.path}; allowed: {', '.join(allowed)}"
    elif status == 404:
        message = f"no endpoint at {request.path}; GET /api/openapi.json lists the endpoints"
    else:
        message = exc.text or HTTPStatus(status).phrase
        if message.startswith(f"{status}: "):
            message = message[len(f"{status}: ") :]
    return error_response(status, code, message, headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err.status, err.code, err.message)
    except CommandError as err:
        return error_response(err.status, err.code, err.message)
    except ParamError as err:
        return error_response(400, err.code, err.message)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and the like are not errors
            raise
        if not request.path.startswith(("/api/", "/apps/")):  # page paths: aiohttp's plain answers
            raise
        return _http_exception_response(request, exc)
    except AuthStorageUnavailable as err:  # the shared tokens and sessions (PostgreSQL) did not answer
        log.warning("api_auth_storage_error", method=request.method, path=request.path, error=str(err))
        return error_response(503, "auth_unavailable", "sessions could not be checked; try again later")
    except StoreError:
        log.exception("api_store_error", method=request.method, path=request.path)
        return error_response(503, "store_unavailable", "the store could not answer; try again later")
    except Exception:  # the request's root: log the traceback, never send it
        log.exception("api_internal_error", method=request.method, path=request.path)
        return error_response(
            500, "internal_error", "internal server error; the details are in the server log"
        )
