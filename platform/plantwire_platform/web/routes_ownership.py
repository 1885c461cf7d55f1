"""`POST /api/devices/{device}/move`: an admin gives a device to another gateway (audited).

Until then ingest refuses the device's meta, status and data from any gateway but its owner
(docs/wire.md, "Device ownership"); the command service does the move and keeps the audit entry.
"""

from __future__ import annotations

from aiohttp import web

from plantwire_platform.web.api_models.common import DevicePath, NoQuery
from plantwire_platform.web.api_models.ownership import MoveBody
from plantwire_platform.web.query_params import validate_params
from plantwire_platform.web.request_body import parse_body
from plantwire_platform.web.responses import json_response
from plantwire_platform.web.routes_commands import user_of
from plantwire_platform.web.runtime import runtime_of


def add_ownership_routes(app: web.Application) -> None:
    app.router.add_post("/api/devices/{device}/move", move_device)


async def move_device(request: web.Request) -> web.Response:
    validate_params(request.query, NoQuery)
    device = validate_params(request.match_info, DevicePath, "path").device
    data = await parse_body(request, MoveBody)
    done = await runtime_of(request).command_service.move(user_of(request), device, data.gateway)
    return json_response({"device": done.device, "gateway": done.gateway, "previous": done.previous})
