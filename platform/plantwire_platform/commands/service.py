"""The one command path: write a tag, call a method, browse, attach and detach devices.

REST handlers and apps call the same `CommandService` methods with typed arguments. A command is
validated against the store's copy of the device's meta before anything is sent, then travels over
MQTT to the device's gateway (`CommandBus`) and comes back as the gateway's reply. Every write,
call, attach and detach, refused or not, is kept in the audit log. Failures raise the typed
errors of `commands.errors`; the web layer maps them to HTTP, apps catch them by class.

Arguments are typed, but apps are code the platform does not control, so values are still
checked at run time (a tag name that is not a string is a `BadCommand`, not a crash).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from plantwire import wire
from plantwire.logs import get_logger
from plantwire_platform.commands.audit_bounds import bounded, cut
from plantwire_platform.commands.bus import (
    DEFAULT_TIMEOUT_S,
    MAX_TIMEOUT_S,
    CommandBus,
    CommandNotSent,
    CommandTimeout,
    Outcome,
    make_command,
    new_command_id,
)
from plantwire_platform.commands.checks import (
    audit_value,
    check_call_args,
    check_nesting,
    check_write,
    device_id_for,
)
from plantwire_platform.commands.command_settings import DEFAULT_ATTACH_NETWORKS
from plantwire_platform.commands.endpoint_policy import EndpointPolicy
from plantwire_platform.commands.errors import (
    DEVICE_FAILURE_CODES,
    BadCommand,
    CommandConflict,
    CommandError,
    CommandsUnavailable,
    CommandTimedOut,
    DeviceFailed,
    InvalidCommand,
    NotWritable,
    UnknownTarget,
    UnsupportedCommand,
)
from plantwire_platform.commands.gateway_page import GATEWAY_DEVICES, GATEWAY_PAGE
from plantwire_platform.commands.sparkplug_writes import (
    DEFAULT_CONFIRM_S,
    DcmdDone,
    SparkplugTarget,
    SparkplugWrites,
    not_supported,
    sparkplug_target,
)
from plantwire_platform.commands.sparkplug_writes import ENDPOINT_PREFIX as SPARKPLUG_ENDPOINT_PREFIX
from plantwire_platform.store import device_state
from plantwire_platform.store.device_query import DeviceQuery
from plantwire_platform.store.model import AuditEntry, Catalog, DeviceRecord
from plantwire_platform.store.threads import StoreThreads

ATTACH_TIMEOUT_S: Final = 15.0
"""The gateway probes a new endpoint for up to 5 s; this leaves room for the round trip."""
DETACHED: Final = "detached"
MAX_AUDIT: Final = 1000
DEFAULT_AUDIT_FIELD_BYTES: Final = 4096
"""Longest request value or message an audit entry keeps (`audit.max_field_bytes`)."""
COMMAND_STORE_THREADS: Final = 1
"""Commands are a few a minute: one thread for their store reads and audit writes."""

CONNECTION_KEYS: Final = (
    "security_policy", "security_mode", "username", "password_file", "user_certificate",
    "user_private_key", "trust_server_certificate",
)  # fmt: skip
"""The attach keys that say how to connect (the same as a gateway config's [[devices]] keys)."""

# Gateway reply code -> (error class, error code)
_REPLY_ERRORS: Final[dict[str, tuple[type[CommandError], str]]] = {
    "opcua_status": (DeviceFailed, "device_refused"),
    "unknown_device": (UnknownTarget, "unknown_device"),
    "unknown_tag": (UnknownTarget, "unknown_tag"),
    "not_writable": (NotWritable, "tag_not_writable"),
    "unknown_method": (UnknownTarget, "unknown_method"),
    "unknown_node": (UnknownTarget, "unknown_node"),
    "invalid": (InvalidCommand, "invalid_value"),
    "duplicate": (CommandConflict, "duplicate_device"),
    "unreachable": (DeviceFailed, "device_unreachable"),
    "not_connected": (DeviceFailed, "device_unreachable"),
    # Why a connection (attach's probe, or a command's session) failed: each its own code, HTTP 502.
    "security_rejected": (DeviceFailed, "security_rejected"),
    "certificate_untrusted": (DeviceFailed, "certificate_untrusted"),
    "identity_rejected": (DeviceFailed, "identity_rejected"),
    "too_many_operations": (DeviceFailed, "too_many_operations"),
    "configured": (CommandConflict, "device_configured"),
    "expired": (CommandTimedOut, "command_expired"),
    "interrupted": (DeviceFailed, "command_interrupted"),
}

T = TypeVar("T")
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What every command that reached a gateway answers."""

    id: str
    gateway: str
    device: str
    status: int
    status_name: str
    rtt_ms: float
    gateway_ms: float

    @classmethod
    def of(cls, outcome: Outcome, gateway: str) -> Receipt:
        r = outcome.reply
        gateway_ms = round((r.done - r.received) / 1000, 3)
        return cls(r.id, gateway, r.device, r.status, r.status_name or "Good", outcome.rtt_ms, gateway_ms)


@dataclass(frozen=True, slots=True)
class WriteDone:
    receipt: Receipt
    tag: str
    requested: wire.Value
    value: Any
    """The value read back after the write (None if the gateway could not read it)."""
    value_ts: int | None


@dataclass(frozen=True, slots=True)
class CallDone:
    receipt: Receipt
    method: str
    outputs: list[Any]


@dataclass(frozen=True, slots=True)
class BrowseDone:
    receipt: Receipt
    result: dict[str, Any]
    """The gateway's browse answer (node, children) as it sent it."""


@dataclass(frozen=True, slots=True)
class AttachRequest:
    endpoint: str
    device: str | None = None
    root: str | None = None
    include: list[str] | None = None
    exclude: list[str] | None = None
    connection: dict[str, str] = field(default_factory=dict)
    """Security and identity keys (`CONNECTION_KEYS`), passed to the gateway as given."""


@dataclass(frozen=True, slots=True)
class AttachDone:
    receipt: Receipt
    endpoint: str
    root: str
    tags: int


@dataclass(frozen=True, slots=True)
class GatewayDevice:
    id: str
    state: str
    endpoint: str | None
    error: str | None
    tag_count: int
    last_data: int | None


@dataclass(slots=True)
class GatewayView:
    id: str
    state: str
    since: int | None
    version: str | None
    devices: list[GatewayDevice] = field(default_factory=list)
    """Its first devices by id, at most the `devices` asked for (`device_count` says how many in all)."""
    device_count: int = 0


@dataclass(frozen=True, slots=True)
class GatewayPage:
    gateways: list[GatewayView]
    """At most `limit` gateways, ordered by id."""
    total: int
    """Gateways known (from their status or their devices), all pages."""


@dataclass(frozen=True, slots=True)
class MoveDone:
    device: str
    gateway: str
    previous: str
    """The gateway that owned the device before."""


class _Audit:
    """Collects what one command did, and writes one audit entry however it ends."""

    def __init__(
        self, service: CommandService, user: str, action: str, gateway: str | None, device: str | None
    ) -> None:
        self._service = service
        self.done_as: tuple[str, int] | None = None
        """(outcome, HTTP status) of a success other than ("ok", ok_status): a DCMD "sent", 202."""
        self.entry: dict[str, Any] = {
            "ts": wire.now_us(),
            "user": user,
            "action": action,
            "gateway": gateway,
            "device": device,
            "command_id": None,
            "request": {},
            "status": None,
            "rtt_ms": None,
        }

    async def _done(self, outcome: str, http_status: int, message: str | None) -> None:
        entry = AuditEntry(id=0, outcome=outcome, http_status=http_status, message=message, **self.entry)
        await self._service.add_audit(entry)

    async def run(self, body: Awaitable[T], ok_status: int = 200) -> T:
        """Await `body`; audit its result or its CommandError."""
        try:
            result = await body
        except CommandError as err:
            sent = self.entry["command_id"] is not None
            outcome = "timeout" if isinstance(err, CommandTimedOut) else ("failed" if sent else "rejected")
            await self._done(outcome, err.status, err.message)
            raise
        outcome, status = self.done_as or ("ok", ok_status)
        await self._done(outcome, status, None)
        return result


def check_timeout(raw: object, default: float) -> float:
    """Seconds to wait for the reply: a number in (0, MAX_TIMEOUT_S], or `default` for None."""
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= MAX_TIMEOUT_S:
        raise BadCommand(f"'timeout' must be a number of seconds in (0, {MAX_TIMEOUT_S:g}]")
    return float(raw)


def _command_id(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise BadCommand("'id' must be a string")
    try:
        return wire.check_command_id(raw)
    except wire.WireError as err:
        raise BadCommand(str(err)) from None


_ATTACH_FAILURES: Final[dict[str, str]] = {
    "device_unreachable": "the gateway cannot connect to the endpoint",
    "unknown_node": "the device has no node at the given root",
    "duplicate_device": "the gateway already has a device with this id or endpoint",
    "device_configured": "the device is in the gateway's config file",
    "invalid_value": "the gateway refused the attach arguments",
    "device_refused": "the device refused the session",
}


def _without_remote_text(err: CommandError, gateway: str, device: str) -> CommandError:
    """The same error with a fixed message: what a gateway or the endpoint's server said (an
    arbitrary host's text, when attach is aimed at one) is logged, bounded, never echoed."""
    if err.code in ("command_timeout", "broker_unavailable", "commands_unavailable"):
        return err  # the platform's own words
    log.info("attach_failed", gateway=gateway, device=device, code=err.code, detail=cut(err.message, 300))
    text = _ATTACH_FAILURES.get(err.code) or DEVICE_FAILURE_CODES.get(
        err.code, "the gateway could not attach the device"
    )
    return type(err)(f"{text} (code {err.code})", err.code)


def _is_detached(record: DeviceRecord) -> bool:
    return record.state == "offline" and record.error == DETACHED


def _gateway_device(record: DeviceRecord) -> GatewayDevice:
    d = device_state.shown(record)
    detached = _is_detached(d)
    state = DETACHED if detached else d.state
    return GatewayDevice(d.id, state, d.endpoint, None if detached else d.error, d.tag_count, d.last_data)


class CommandService:
    """Commands to devices, for REST clients and apps alike. `bus` None: no command connection."""

    def __init__(
        self,
        store: Catalog,
        bus: CommandBus | None,
        on_moved: Callable[[str, str], None] | None = None,
        audit_max_field_bytes: int = DEFAULT_AUDIT_FIELD_BYTES,
        attach_policy: EndpointPolicy | None = None,
        sparkplug: SparkplugWrites | None = None,
    ) -> None:
        """`sparkplug`: writes to devices of Sparkplug edge nodes (None: the host is not enabled)."""
        self._store = store
        self._bus = bus
        self._sparkplug = sparkplug
        self._attach_policy = attach_policy or EndpointPolicy(DEFAULT_ATTACH_NETWORKS)
        self._audit_max = audit_max_field_bytes
        self._on_moved = on_moved
        """Told (device, gateway) after a move, e.g. ingest's ownership cache."""
        self._threads = StoreThreads("pw-commands", COMMAND_STORE_THREADS)

    def close(self) -> None:
        """Wait for store calls still running (blocks); call after REST and apps have stopped."""
        self._threads.close()

    def _require_bus(self) -> CommandBus:
        if self._bus is None:
            raise CommandsUnavailable(
                "this platform runs without a command connection", "commands_unavailable"
            )
        return self._bus

    async def _device(self, device: str) -> DeviceRecord:
        record = await self._threads.run(self._store.get_device, device)
        if record is None:
            raise UnknownTarget(
                f"device {device!r} is not known; GET /api/devices lists them", "unknown_device"
            )
        if _is_detached(record):
            raise UnknownTarget(f"device {device!r} is detached", "unknown_device")
        return record

    async def _send(
        self, audit: _Audit | None, gateway: str, command: wire.Command, timeout_s: float
    ) -> Outcome:
        bus = self._require_bus()
        if audit is not None:
            audit.entry["command_id"] = command.id
        try:
            outcome = await bus.execute(gateway, command, timeout_s)
        except CommandTimeout as err:
            raise CommandTimedOut(str(err), "command_timeout") from None
        except CommandNotSent as err:
            raise CommandsUnavailable(str(err), "broker_unavailable") from None
        reply = outcome.reply
        if audit is not None:
            audit.entry["status"] = reply.status
            audit.entry["rtt_ms"] = outcome.rtt_ms
        if not reply.ok:
            error_class, code = _REPLY_ERRORS.get(reply.code, (DeviceFailed, "gateway_error"))
            message = reply.error or reply.code
            if reply.status:
                message = f"{message} (OPC UA status {reply.status_name} 0x{reply.status:08X})"
            raise error_class(message, code)
        return outcome

    # --- write and call ---------------------------------------------------------------------------

    async def write(
        self,
        user: str,
        device: str,
        tag: str,
        value: wire.Value,
        timeout_s: float | None = None,
        command_id: str | None = None,
    ) -> WriteDone | DcmdDone:
        """Validate, send and audit a write of `value` to `tag`: a `cmd` to a Plantwire gateway
        (`WriteDone`), or a DCMD to a device of a Sparkplug edge node (`DcmdDone`)."""
        audit = _Audit(self, user, "write", None, device)
        audit.entry["request"] = {"tag": tag, "value": audit_value(value)}

        async def body() -> WriteDone | DcmdDone:
            if not isinstance(tag, str) or not tag:
                raise BadCommand("'tag' must be a tag name, e.g. \"Spindle/SpeedSetpoint\"")
            check_nesting(value, "the value")
            timeout = check_timeout(timeout_s, DEFAULT_TIMEOUT_S)
            record = await self._device(device)
            audit.entry["gateway"] = record.gateway
            tags = await self._threads.run(self._store.list_tags, device)
            tag_record = next((t for t in tags if t.tag == tag), None)
            if tag_record is None:
                raise UnknownTarget(
                    f"device {device!r} has no tag {tag!r}; GET /api/devices/{device}/tags", "unknown_tag"
                )
            checked = check_write(tag_record, value)
            target = sparkplug_target(record)
            if target is not None:
                dtype = tag_record.data_type
                return await self._dcmd(audit, target, tag, checked, dtype, timeout_s, command_id)
            args = {"tag": tag, "value": checked}
            command = make_command("write", device, args, timeout, user, _command_id(command_id))
            outcome = await self._send(audit, record.gateway, command, timeout)
            result = outcome.reply.result
            return WriteDone(
                Receipt.of(outcome, record.gateway), tag, checked, result.get("value"), result.get("ts")
            )

        return await audit.run(body())

    async def call(
        self,
        user: str,
        device: str,
        method: str,
        args: list[wire.Value],
        timeout_s: float | None = None,
        command_id: str | None = None,
    ) -> CallDone:
        """Validate, send and audit a call of `method` with `args`."""
        audit = _Audit(self, user, "call", None, device)
        audit.entry["request"] = {"method": method, "args": audit_value(args)}

        async def body() -> CallDone:
            if not isinstance(method, str) or not method:
                raise BadCommand("'method' must be a method's browse name, e.g. \"Start\"")
            checked = check_call_args(args)
            timeout = check_timeout(timeout_s, DEFAULT_TIMEOUT_S)
            record = await self._device(device)
            audit.entry["gateway"] = record.gateway
            if sparkplug_target(record) is not None:
                raise not_supported("method calls", device)
            command = make_command(
                "call", device, {"method": method, "args": checked}, timeout, user, _command_id(command_id)
            )
            outcome = await self._send(audit, record.gateway, command, timeout)
            outputs = outcome.reply.result.get("outputs", [])
            return CallDone(Receipt.of(outcome, record.gateway), method, outputs)

        return await audit.run(body())

    async def browse(
        self, user: str, device: str, node: str | None, timeout_s: float | None = None
    ) -> BrowseDone:
        """The children of `node` (the device's root for None); not audited (it changes nothing)."""
        timeout = check_timeout(timeout_s, DEFAULT_TIMEOUT_S)
        record = await self._device(device)
        if sparkplug_target(record) is not None:
            raise not_supported("browse", device)
        args = {"node": node} if node else {}
        command = make_command("browse", device, args, timeout, user)
        outcome = await self._send(None, record.gateway, command, timeout)
        return BrowseDone(Receipt.of(outcome, record.gateway), outcome.reply.result)

    async def _dcmd(
        self,
        audit: _Audit,
        target: SparkplugTarget,
        tag: str,
        value: wire.Value,
        data_type: str | None,
        timeout_s: float | None,
        command_id: str | None,
    ) -> DcmdDone:
        if self._sparkplug is None:
            raise CommandsUnavailable(
                f"device {target.device_id!r} is behind a Sparkplug edge node and this platform runs "
                "without its Sparkplug host (sparkplug_host.enabled)",
                "sparkplug_host_disabled",
            )
        timeout = check_timeout(timeout_s, DEFAULT_CONFIRM_S)
        cid = _command_id(command_id) or new_command_id()
        done = await self._sparkplug.write(target, tag, value, data_type, timeout, cid)
        audit.entry["command_id"] = done.id
        audit.entry["rtt_ms"] = done.rtt_ms
        if not done.confirmed:
            audit.done_as = ("sent", done.http_status)
        return done

    # --- gateways, attach and detach --------------------------------------------------------------

    async def gateways(
        self, offset: int = 0, limit: int = GATEWAY_PAGE, devices: int = GATEWAY_DEVICES
    ) -> GatewayPage:
        """A page of the gateways known from their status or their devices, ordered by id, each with
        its device count and its first `devices` devices (one device page per gateway listed)."""
        counts = dict(await self._threads.run(self._store.gateway_device_counts))
        known = dict(self._bus.gateways) if self._bus is not None else {}
        ids = sorted(set(counts) | set(known))
        out = []
        for gw in ids[offset : offset + max(0, limit)]:
            status = known.get(gw)
            view = GatewayView(gw, "unknown", None, None, device_count=counts.get(gw, 0))
            if status is not None:
                view.state, view.since, view.version = status.state, status.since, status.version
            if view.device_count:
                query = DeviceQuery(gateway=gw, limit=max(1, devices))
                records = (await self._threads.run(self._store.page_devices, query)).devices
                if status is None:
                    view.state = records[0].gateway_state if records else "unknown"
                view.devices = [_gateway_device(r) for r in records[: max(0, devices)]]
            out.append(view)
        return GatewayPage(out, len(ids))

    async def _refuse_sparkplug_gateway(self, gateway: str, what: str) -> None:
        """An edge node's devices come and go with its births and deaths: nothing to attach there."""
        if gateway in self._require_bus().gateways:
            return  # a Plantwire gateway (its status arrives on plantwire/v1)
        page = await self._threads.run(self._store.page_devices, DeviceQuery(gateway=gateway, limit=1))
        if page.devices and (page.devices[0].endpoint or "").startswith(SPARKPLUG_ENDPOINT_PREFIX):
            raise UnsupportedCommand(
                f"gateway {gateway!r} is a Sparkplug B edge node: its devices follow its births and "
                f"deaths, so {what} is done at the edge node, not from the platform",
                "not_supported",
            )

    async def _gateway_known(self, gateway: str) -> None:
        status = self._require_bus().gateways.get(gateway)
        if status is None and not await self._gateway_has_devices(gateway):
            raise UnknownTarget(
                f"gateway {gateway!r} is not known; GET /api/gateways lists them", "unknown_gateway"
            )
        if status is not None and status.state != "online":
            raise CommandsUnavailable(
                f"gateway {gateway!r} is offline; it cannot attach devices now", "gateway_offline"
            )

    async def _gateway_has_devices(self, gateway: str) -> bool:
        page = await self._threads.run(self._store.page_devices, DeviceQuery(gateway=gateway, limit=0))
        return page.total > 0

    async def attach(
        self, user: str, gateway: str, request: AttachRequest, timeout_s: float | None = None
    ) -> AttachDone:
        """Ask `gateway` to attach the device at `request.endpoint`; 201 in the audit when done."""
        audit = _Audit(self, user, "attach", gateway, None)
        audit.entry["request"] = {
            k: v
            for k, v in (
                ("endpoint", request.endpoint),
                ("id", request.device),
                ("root", request.root),
                ("include", request.include),
                ("exclude", request.exclude),
            )
            if v is not None
        } | dict(request.connection)  # file paths and names only: a password is never in a request

        async def body() -> AttachDone:
            endpoint = request.endpoint
            if not isinstance(endpoint, str) or not endpoint.startswith("opc.tcp://") or len(endpoint) <= 10:
                raise BadCommand(f"endpoint {endpoint!r} must be an opc.tcp://host:port URL", "bad_endpoint")
            device = request.device or device_id_for(endpoint)
            audit.entry["device"] = device
            try:
                wire.check_id("device", device)
            except wire.WireError as err:
                raise BadCommand(str(err)) from None
            for key, patterns in (("include", request.include), ("exclude", request.exclude)):
                if patterns is not None and not (
                    isinstance(patterns, list) and all(isinstance(x, str) for x in patterns)
                ):
                    raise BadCommand(f"'{key}' must be a list of glob patterns")
            if request.root is not None and not isinstance(request.root, str):
                raise BadCommand("'root' must be a NodeId or a browse path")
            timeout = check_timeout(timeout_s, ATTACH_TIMEOUT_S)
            await self._refuse_sparkplug_gateway(gateway, "attaching a device")
            await self._attach_policy.check(endpoint)
            await self._gateway_known(gateway)
            existing = await self._threads.run(self._store.get_device, device)
            if existing is not None and not _is_detached(existing):
                raise CommandConflict(
                    f"device id {device!r} is taken (gateway {existing.gateway!r}); choose --id",
                    "duplicate_device",
                )
            args: dict[str, Any] = {"endpoint": endpoint}
            for key, value in (
                ("root", request.root),
                ("include", request.include),
                ("exclude", request.exclude),
            ):
                if value is not None:
                    args[key] = value
            unknown = set(request.connection) - set(CONNECTION_KEYS)
            if unknown:
                raise BadCommand(f"unknown attach keys: {', '.join(sorted(unknown))}")
            args.update(request.connection)
            command = make_command("attach", device, args, timeout, user, None)
            try:
                outcome = await self._send(audit, gateway, command, timeout)
            except CommandError as err:
                raise _without_remote_text(err, gateway, device) from None
            result = outcome.reply.result
            return AttachDone(
                Receipt.of(outcome, gateway),
                result.get("endpoint", endpoint),
                result.get("root", ""),
                result.get("tags", 0),
            )

        return await audit.run(body(), ok_status=201)

    async def detach(self, user: str, gateway: str, device: str, timeout_s: float | None = None) -> Receipt:
        """Ask `gateway` to detach `device`."""
        audit = _Audit(self, user, "detach", gateway, device)

        async def body() -> Receipt:
            timeout = check_timeout(timeout_s, DEFAULT_TIMEOUT_S)
            await self._refuse_sparkplug_gateway(gateway, "detaching a device")
            await self._gateway_known(gateway)
            command = make_command("detach", device, {}, timeout, user)
            return Receipt.of(await self._send(audit, gateway, command, timeout), gateway)

        return await audit.run(body())

    async def move(self, user: str, device: str, gateway: str) -> MoveDone:
        """Give `device` to `gateway` (an admin act, audited): from now on only that gateway's
        meta, status and data of the device are stored, and its commands go there."""
        audit = _Audit(self, user, "move", gateway, device)
        audit.entry["request"] = {"gateway": gateway}

        async def body() -> MoveDone:
            try:
                wire.check_id("gateway", gateway)
            except wire.WireError as err:
                raise BadCommand(str(err)) from None
            previous = await self._threads.run(self._store.move_device, device, gateway)
            if previous is None:
                raise UnknownTarget(
                    f"device {device!r} is not known; GET /api/devices lists them", "unknown_device"
                )
            if self._on_moved is not None:
                self._on_moved(device, gateway)
            return MoveDone(device, gateway, previous)

        return await audit.run(body())

    async def add_audit(self, entry: AuditEntry) -> None:
        await self._threads.run(self._store.add_audit, bounded(entry, self._audit_max))

    # --- the audit log ----------------------------------------------------------------------------

    async def audit(self, limit: int, device: str | None, before: int | None) -> list[AuditEntry]:
        """Audit entries, newest first: at most `limit` (1..MAX_AUDIT), of `device`, before id `before`."""
        if not 1 <= limit <= MAX_AUDIT:
            raise BadCommand(f"'limit' must be 1 to {MAX_AUDIT}", "invalid_parameter")
        return await self._threads.run(self._store.list_audit, limit, device, before)
