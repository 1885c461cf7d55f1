"""Models of the command routes: write, call, browse, gateways, attach, detach and the audit log."""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from pydantic import Field

from plantwire import wire
from plantwire_platform.commands.bus import MAX_TIMEOUT_S
from plantwire_platform.commands.gateway_page import GATEWAY_DEVICES, GATEWAY_PAGE, MAX_GATEWAY_PAGE
from plantwire_platform.commands.service import MAX_AUDIT
from plantwire_platform.web.api_models.common import (
    COMMAND_ID_PATTERN,
    ID_PATTERN,
    MAX_TEXT,
    AnyJson,
    Count,
    RowId,
    ScalarValue,
    Strict,
    Text,
    Time,
    TimeOrNull,
)

MIN_TIMEOUT_S: Final = 0.1
"""A reply cannot come back sooner; a shorter wait would time out a command that still runs."""
MAX_ENDPOINT: Final = 2048

Timeout = Annotated[
    float,
    Field(
        ge=MIN_TIMEOUT_S,
        le=MAX_TIMEOUT_S,
        description=f"Seconds to wait for the gateway's reply ({MIN_TIMEOUT_S:g} to {MAX_TIMEOUT_S:g}; "
        "504 after).",
    ),
]
CommandId = Annotated[
    str,
    Field(pattern=COMMAND_ID_PATTERN, description="Command id: give your own to retry safely (run once)."),
]
NODE_PATTERN: Final = (
    r"^(?:ns=([0-9]{1,5});|nsu=[^;]+;)?"
    r"(?:i=([0-9]{1,10})|s=[\s\S]+|g=[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}|b=[A-Za-z0-9+/=]*)$"
)
"""A NodeId's text form: an optional namespace (index or URI), then a numeric, string, GUID or opaque id."""
_NODE_RE: Final = re.compile(NODE_PATTERN)
MAX_NAMESPACE: Final = 2**16 - 1
MAX_NUMERIC_ID: Final = 2**32 - 1


def node_in_range(node: str) -> bool:
    """The namespace index and numeric id fit OPC UA's UInt16 and UInt32 (the pattern checks the form)."""
    m = _NODE_RE.match(node)
    return m is not None and int(m.group(1) or 0) <= MAX_NAMESPACE and int(m.group(2) or 0) <= MAX_NUMERIC_ID


PathId = Annotated[str, Field(pattern=ID_PATTERN, examples=["line-1"])]
"""A gateway or device id in a command's path: an id that cannot exist is a 400 at once."""


# --- paths and queries ----------------------------------------------------------------------------


class GatewayPath(Strict):
    gateway: PathId


class GatewayDevicePath(Strict):
    gateway: PathId
    device: PathId


class BrowseQuery(Strict):
    node: Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=NODE_PATTERN)] | None = Field(
        None,
        description="NodeId of the node to browse (default the device's root); a namespace index above "
        "65535 or a numeric id above 4294967295 is a 422 (invalid_node).",
        examples=["ns=2;s=cnc-1"],
    )
    timeout: Timeout | None = None


class DetachQuery(Strict):
    timeout: Timeout | None = None


class AuditQuery(Strict):
    limit: int = Field(100, ge=1, le=MAX_AUDIT, description="Most entries to return.")
    device: Text | None = Field(None, description="Only this device's entries.")
    before: RowId | None = Field(None, description="Only entries with a smaller id (the next page).")


# --- bodies ---------------------------------------------------------------------------------------


class WriteBody(Strict):
    tag: Text = Field(examples=["Spindle/SpeedSetpoint"])
    value: AnyJson = Field(examples=[4321.5])
    id: CommandId | None = None
    timeout: Timeout | None = None


class CallBody(Strict):
    method: Text = Field(examples=["Start"])
    args: Annotated[list[ScalarValue], Field(max_length=wire.MAX_COMMAND_ARGS)] = Field(
        default_factory=list, description="Input arguments, in order: numbers, booleans, strings or null."
    )
    id: CommandId | None = None
    timeout: Timeout | None = None


SecurityPolicy = Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]


class AttachBody(Strict):
    endpoint: str = Field(
        min_length=1,
        max_length=MAX_ENDPOINT,
        description="An opc.tcp://host:port URL (anything else: 400 bad_endpoint).",
        examples=["opc.tcp://127.0.0.1:4850"],
    )
    id: Annotated[str, Field(pattern=ID_PATTERN)] | None = Field(
        None, description="Device id (default from the endpoint)."
    )
    root: Text | None = Field(None, description="NodeId or browse path of the device's root.")
    include: list[Text] | None = Field(None, description="Glob patterns of tags to keep.")
    exclude: list[Text] | None = Field(None, description="Glob patterns of tags to leave out.")
    # Security and identity: the same keys as a gateway config's [[devices]] (docs/opcua.md). Files are
    # paths on the gateway's machine; a password is never sent (password_file, or the gateway's env).
    security_policy: (
        Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"] | None
    ) = Field(None, description="OPC UA security policy (default None).")
    security_mode: Literal["Sign", "SignAndEncrypt"] | None = Field(
        None, description="Default SignAndEncrypt when a policy is set."
    )
    username: Text | None = Field(None, description="User name for the session.")
    password_file: Text | None = Field(
        None,
        description="Path, on the gateway's machine, of a file holding the password (without it: the "
        "gateway's PLANTWIRE_DEVICE_PASSWORD__<DEVICE_ID>).",
    )
    user_certificate: Text | None = Field(
        None, description="Path of an X.509 user certificate on the gateway."
    )
    user_private_key: Text | None = Field(None, description="Path of the user certificate's private key.")
    trust_server_certificate: Literal["explicit", "first-use"] | None = Field(
        None,
        description="explicit (default): an unknown server certificate is refused (certificate_untrusted) "
        "until trusted on the gateway; first-use: the first one seen is trusted.",
    )
    timeout: Timeout | None = None


# --- responses ------------------------------------------------------------------------------------


class Receipt(Strict):
    id: str = Field(description="Command id (give your own `id` to retry safely).")
    gateway: str
    device: str
    status: int = Field(description="OPC UA status code (0 = Good).")
    status_name: str = Field(examples=["Good"])
    rtt_ms: float = Field(description="Platform -> gateway -> device -> platform, measured here.")
    gateway_ms: float = Field(description="Time the gateway spent executing.")


class WriteResult(Receipt):
    tag: str
    requested: AnyJson
    value: AnyJson = Field(description="The value read back after the write (null if unreadable).")
    value_ts: str | None


class SparkplugWriteResult(Strict):
    """A write to a device of a Sparkplug B edge node, sent as DCMD (Sparkplug has no reply)."""

    id: str = Field(description="Command id in the audit; a DCMD carries none, a retry sends again.")
    gateway: str = Field(description="The edge node as gateway id: <group>.<edge node>.")
    device: str
    protocol: Literal["sparkplug"]
    tag: str
    requested: AnyJson
    confirmed: bool = Field(
        description="True (HTTP 200): a value equal to `requested` was stored after the DCMD left; "
        "false (HTTP 202): sent, but no such value came back within `timeout`."
    )
    value: AnyJson = Field(description="The confirming value as stored (null when not confirmed).")
    value_ts: str | None
    rtt_ms: float | None = Field(description="DCMD published -> confirming value stored (null if not).")


class CallResult(Receipt):
    method: str
    outputs: list[AnyJson]


class BrowsedNode(Strict):
    node_id: str
    browse_name: str | None
    node_class: str


class BrowseChild(Strict):
    node_id: str
    browse_name: str
    node_class: Literal["Object", "Variable", "Method"]
    data_type: str | None
    writable: bool
    has_children: bool


class BrowseResult(Receipt):
    node: BrowsedNode
    root: str
    children: list[BrowseChild]


class GatewayDevice(Strict):
    id: str
    state: str = Field(examples=["online", "detached"])
    endpoint: str | None
    error: str | None
    tag_count: Count
    last_data: TimeOrNull


class GatewayListQuery(Strict):
    """A page of the gateways, ordered by id, each with at most `devices` of its devices."""

    offset: int = Field(0, ge=0, le=10**9, description="Gateways to skip (the page's start).")
    limit: int = Field(
        GATEWAY_PAGE, ge=0, le=MAX_GATEWAY_PAGE, description="Most gateways to return (0: only the total)."
    )
    devices: int = Field(
        GATEWAY_DEVICES,
        ge=0,
        le=MAX_GATEWAY_PAGE,
        description="Most devices listed per gateway, first by id (0: only `device_count`); "
        "the rest are in `GET /api/devices?gateway=`.",
    )


class Gateway(Strict):
    id: str
    state: str = Field(examples=["online", "offline", "unknown"])
    since: TimeOrNull
    version: str | None
    devices: list[GatewayDevice] = Field(description="Its first devices by id, at most `devices` of them.")
    device_count: Count = Field(description="All its devices (those listed and the rest).")
    devices_url: str = Field(
        description="Where all its devices are, paged.", examples=["/api/devices?gateway=line-a"]
    )


class GatewayList(Strict):
    """One page of the gateways, ordered by id; `total` counts all pages."""

    gateways: list[Gateway]
    total: Count = Field(description="Gateways known, on all pages.")
    offset: Count = Field(description="The page's start, as asked.")
    limit: Count = Field(description="The page's size, as asked.")


class AttachResult(Receipt):
    endpoint: str
    root: str
    tags: Count


class DetachResult(Receipt):
    detached: bool


class AuditRecord(Strict):
    id: int
    ts: Time
    user: str
    action: Literal["write", "call", "attach", "detach", "move"]
    gateway: str | None
    device: str | None
    command_id: str | None
    request: dict[str, AnyJson]
    outcome: Literal["ok", "rejected", "failed", "timeout"]
    http_status: int
    status: int | None
    message: str | None
    rtt_ms: float | None


class AuditList(Strict):
    entries: list[AuditRecord]
