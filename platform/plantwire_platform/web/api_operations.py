"""The route table of the REST API: for each operation its method, path, summary, models and statuses.

`web.openapi` turns this table and the models of `web.api_models` into the OpenAPI document;
the handlers in `routes_*.py` parse their requests with the same models (`web.request_body`,
`web.query_params.validate_params`), so the document and the server cannot disagree. A test checks
that every route `create_app` registers has exactly one row here (apart from the page, the probes and
the WebSocket stream, whose entries `web.health` and `web.stream` write themselves).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from pydantic import BaseModel

from plantwire_platform.commands.errors import DEVICE_FAILURE_CODES
from plantwire_platform.web.api_models import apps, commands, data, ownership
from plantwire_platform.web.api_models.common import DevicePath, NoQuery
from plantwire_platform.web.query_params import SeriesParams


@dataclass(frozen=True, slots=True)
class Link:
    """An OpenAPI link: a value of this operation's answer feeds a parameter of another operation."""

    name: str
    operation_id: str
    parameters: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    ok: tuple[type[BaseModel], ...]
    """The success answer's model (several: one of them)."""
    errors: Mapping[int, str]
    """The error statuses this operation answers besides the ones every operation may (400, 500)."""
    ok_status: int = 200
    path_params: type[BaseModel] | None = None
    query: type[BaseModel] | None = NoQuery
    """None: the handler reads no query of its own (an app's route reads its own)."""
    body: type[BaseModel] | None = None
    scope: str | None = None
    """The API token scope the operation needs (None: not declared here)."""
    links: tuple[Link, ...] = field(default=())
    more_ok: tuple[tuple[int, str, type[BaseModel]], ...] = ()
    """Other success answers: (status, description, model), e.g. a 202 beside the 200."""


_STORE: Final = {503: "The store could not answer (code store_unavailable)."}
_UNKNOWN_DEVICE: Final = {404: "Unknown device (code unknown_device).", **_STORE}
_DEVICE_FAILED: Final = "The device refused or could not be reached; `code` says why: " + "; ".join(
    f"`{code}`: {meaning}" for code, meaning in DEVICE_FAILURE_CODES.items()
)
_SEND: Final = {
    404: "Unknown device, tag or method (unknown_device, unknown_tag, unknown_method).",
    502: _DEVICE_FAILED,
    503: "No broker connection, or gateway offline.",
    504: "No reply in time (code command_timeout); retry with the same id.",
}
_APP_HOST: Final = {503: "The app host is not running (apps_unavailable)."}
_UNKNOWN_APP: Final = {404: "Unknown app (unknown_app).", **_APP_HOST}
_DEVICE_LINKS: Final = (
    Link("device", "getDevice", {"device": "$response.body#/devices/0/id"}),
    Link("tags", "listTags", {"device": "$response.body#/devices/0/id"}),
    Link("latest", "getLatest", {"device": "$response.body#/devices/0/id"}),
)


def _lifecycle(action: str, summary: str) -> Operation:
    return Operation(
        "POST", f"/api/apps/{{app_id}}/{action}", f"{action}App", summary, "apps", (apps.App,),
        _UNKNOWN_APP, path_params=apps.AppPath,
    )  # fmt: skip


def _app_route(method: str) -> Operation:
    return Operation(
        method,
        "/apps/{app_id}/{path}",
        f"appRoute{method.capitalize()}",
        "A route the app serves (GET metrics is built in: its counters and own metrics).",
        "apps",
        (apps.AppAnswer,),
        {404: "Unknown app or route.", 503: "The app is not running (app_not_running)."},
        path_params=apps.AppRoutePath,
        query=None,  # the app reads its own query
    )


OPERATIONS: Final[tuple[Operation, ...]] = (
    # --- reading ---
    Operation(
        "GET", "/api/health", "getHealth", "Service health, stored point count and ingest figures.",
        "data", (data.Health,), _STORE,
    ),
    Operation(
        "GET", "/api/devices", "listDevices",
        "A page of the devices any gateway reported (by id; filter by gateway, state, id substring), "
        "with the total that match: page with offset and limit.",
        "data", (data.DeviceList,), _STORE, query=data.DeviceListQuery, links=_DEVICE_LINKS,
    ),
    Operation(
        "GET", "/api/devices/{device}", "getDevice", "One device.", "data", (data.Device,),
        _UNKNOWN_DEVICE, path_params=DevicePath,
    ),
    Operation(
        "GET", "/api/devices/{device}/tags", "listTags", "The tags of a device, from its meta message.",
        "data", (data.TagList,), _UNKNOWN_DEVICE, path_params=DevicePath,
    ),
    Operation(
        "GET", "/api/latest", "getLatest",
        "The newest value of every tag of a device (tags without a value are left out).",
        "data", (data.Latest,), _UNKNOWN_DEVICE, query=data.LatestQuery,
    ),
    Operation(
        "GET", "/api/series", "getSeries",
        "Raw points of one tag in a time window, or aggregates per bucket when `every` is given "
        "(RawSeries without every, else BucketSeries). 400 also for a window that is empty, longer "
        "than 366d or holds too many buckets, and for limit given with every.",
        "data", (data.RawSeries, data.BucketSeries),
        {404: "Unknown device, or unknown tag of the device.", **_STORE}, query=SeriesParams,
    ),
    Operation(
        "GET", "/api/openapi.json", "getOpenApi", "This document.", "meta", (data.OpenApiDocument,), {},
    ),
    # --- commands ---
    Operation(
        "POST", "/api/devices/{device}/write", "writeTag",
        "Write a writable tag; answers with the OPC UA status and the value read back. A device of "
        "a Sparkplug B edge node is written with a DCMD: 200 when a DDATA with the written value "
        "was stored within `timeout` (default 5 s), else 202 (sent, not confirmed; Sparkplug has "
        "no command reply).", "commands",
        (commands.WriteResult, commands.SparkplugWriteResult),
        {
            **_SEND,
            403: "The tag is read-only (code tag_not_writable; a Sparkplug metric marked readOnly).",
            422: "A field of the wrong type, or a value of the wrong type for the tag (invalid_value) "
            "or outside its range (out_of_range).",
            503: "No broker connection, or gateway offline; for a Sparkplug device also device_offline "
            "(its node or device is dead), birth_missing (no birth seen since the platform started: "
            "a rebirth was asked, retry) and sparkplug_host_disabled. Nothing was sent.",
        },
        path_params=DevicePath, body=commands.WriteBody,
        more_ok=(
            (
                202,
                "Sparkplug device: the DCMD was published, but no value equal to the written one "
                "came back within `timeout` (confirmed false).",
                commands.SparkplugWriteResult,
            ),
        ),
    ),
    Operation(
        "POST", "/api/devices/{device}/call", "callMethod",
        "Call a method found by browse name below the device's root (Start, Stop, Reset, ...).",
        "commands", (commands.CallResult,),
        {
            **_SEND,
            422: "A field of the wrong type, or arguments that do not fit the method; a device of a "
            "Sparkplug edge node has no methods (not_supported).",
        },
        path_params=DevicePath, body=commands.CallBody,
    ),
    Operation(
        "GET", "/api/devices/{device}/browse", "browseDevice",
        "A node of the device's address space (default its root) and its children.", "commands",
        (commands.BrowseResult,),
        {
            **_SEND,
            404: "Unknown device, or no such node (unknown_node).",
            422: "The device cannot read that NodeId (code invalid_node).",
        },
        path_params=DevicePath, query=commands.BrowseQuery,
    ),
    Operation(
        "GET", "/api/gateways", "listGateways",
        "A page of the gateways, each with its device count and first devices with their states "
        "(detached devices say so).", "commands",
        (commands.GatewayList,), _STORE, query=commands.GatewayListQuery,
    ),
    Operation(
        "POST", "/api/gateways/{gateway}/devices", "attachDevice",
        "Attach an OPC UA endpoint to a running gateway: probed, stored, streaming within seconds.",
        "commands", (commands.AttachResult,),
        {
            403: "The endpoint's host is not in commands.attach_allowed_networks, or does not resolve "
            "(endpoint_not_allowed).",
            404: "Unknown gateway, or the root node does not exist (unknown_node).",
            409: "Device id taken (duplicate_device).",
            422: "A field of the wrong type or out of range; or the gateway is a Sparkplug B edge node "
            "(not_supported).",
            502: _DEVICE_FAILED,
            503: "Gateway offline, or no broker connection.",
            504: "No reply in time.",
        },
        ok_status=201, path_params=commands.GatewayPath, body=commands.AttachBody,
        links=(
            Link(
                "detach", "detachDevice",
                {"gateway": "$request.path.gateway", "device": "$response.body#/device"},
            ),
        ),
    ),
    Operation(
        "DELETE", "/api/gateways/{gateway}/devices/{device}", "detachDevice",
        "Detach a device attached at runtime: its session stops, its status becomes detached.",
        "commands", (commands.DetachResult,),
        {
            404: "Unknown gateway or device.",
            409: "The device comes from the gateway's config file (device_configured).",
            422: "The gateway is a Sparkplug B edge node (not_supported).",
            503: "Gateway offline, or no broker connection.",
            504: "No reply in time.",
        },
        path_params=commands.GatewayDevicePath, query=commands.DetachQuery,
    ),
    Operation(
        "POST", "/api/devices/{device}/move", "moveDevice",
        "Give a device to another gateway (audited): only its owner's meta, status and data are "
        "stored, and its commands go there.", "commands", (ownership.MoveResult,),
        {404: "Unknown device (unknown_device).", 422: "A field of the wrong type.", **_STORE},
        path_params=DevicePath, body=ownership.MoveBody,
    ),
    Operation(
        "GET", "/api/audit", "listAudit",
        "Every write, call, attach, detach and move (refused ones too), newest first.", "commands",
        (commands.AuditList,), _STORE, query=commands.AuditQuery,
    ),
    # --- apps ---
    Operation(
        "GET", "/api/apps", "listApps", "Every app found, with status, version and counters.", "apps",
        (apps.AppList,), _APP_HOST,
    ),
    _lifecycle("enable", "Start an app (kept until the platform restarts)."),
    _lifecycle("disable", "Stop an app (kept until the platform restarts)."),
    _lifecycle("restart", "Stop and start an app; clears its error."),
    Operation(
        "GET", "/api/alarms", "listAlarms", "Alarms raised by apps, newest first (at most 1000).",
        "apps", (apps.AlarmList,), _STORE, query=apps.AlarmsQuery,
        links=(Link("ack", "ackAlarm", {"alarm_id": "$response.body#/alarms/0/id"}),),
    ),
    Operation(
        "POST", "/api/alarms/{alarm_id}/ack", "ackAlarm",
        "Acknowledge an alarm (the audit names the token that did).", "apps",
        (apps.Alarm,), {404: "Unknown alarm (unknown_alarm).", **_STORE},
        path_params=apps.AlarmPath,
    ),
    *(_app_route(m) for m in ("GET", "POST", "PUT", "DELETE")),
)  # fmt: skip
