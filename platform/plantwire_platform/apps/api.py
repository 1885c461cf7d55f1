"""The one typed async interface every app receives: `AppContext`, and the `App` base class.

An app subclasses `App`, declares its `Config` (a pydantic model) and overrides the hooks it
needs. The host (or the replay harness in tests) builds one `AppContext` per run of the app and
calls the hooks from the app's own task, one at a time:

- `start()` once, `on_points(points)` for every batch of live points matching the manifest's
  `reads`, `stop()` once on shutdown, disable or restart (not after a crash).

Everything an app does to the outside goes through its context, backed by an `AppBackend`: the
store and live bus in the platform, memory in `Replay`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from plantwire.wire import Value, now_us
from plantwire_platform.apps.manifest import Manifest
from plantwire_platform.commands.service import CallDone, WriteDone
from plantwire_platform.commands.sparkplug_writes import DcmdDone
from plantwire_platform.identifiers.registry import IdentifierRegistry
from plantwire_platform.ingest.live_bus import LivePoint, Subscription
from plantwire_platform.store.model import Agg, AlarmRecord, Bucket, DerivedPoint, Point

Severity = str
SEVERITIES: Final = ("info", "warning", "critical")
MAX_PENDING_EMITS: Final = 10_000
"""Derived points one hook may emit before they are stored; more are dropped and counted."""

CommandSender = Callable[[str, str, str, str, tuple[Value, ...]], Awaitable[Any]]
"""(app id, kind 'write' or 'call', device, tag or method, args) -> result: the platform's command
path, the same validation, round trip and audit (as user "app:<id>") as a REST client gets, and
the same typed errors (`plantwire_platform.commands.errors`)."""
if TYPE_CHECKING:  # an app's routes are aiohttp handlers; the app layer itself never imports aiohttp
    from aiohttp import web

    Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class NoConfig(BaseModel):
    """The config of an app that has none."""

    model_config = ConfigDict(extra="forbid")


ConfigT = TypeVar("ConfigT", bound=BaseModel)


class PermissionDenied(PermissionError):
    """The app's manifest does not allow this write or method call (an audit entry was recorded)."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    ts: int
    app: str
    action: str
    """'write' or 'call'."""
    device: str
    target: str
    """The tag written or the method called."""
    allowed: bool
    detail: str


@dataclass(slots=True)
class AppCounters:
    points_in: int = 0
    emitted: int = 0
    alarms: int = 0
    errors: int = 0
    drops: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "points_in": self.points_in,
            "emitted": self.emitted,
            "alarms": self.alarms,
            "errors": self.errors,
            "drops": self.drops,
        }


class AppBackend(Protocol):
    """Where an app's effects go: the platform (host) or memory (replay)."""

    async def store_derived(self, app: str, points: Sequence[DerivedPoint]) -> None: ...
    async def raise_alarm(
        self, app: str, device: str, tag: str, severity: str, message: str, ts: int
    ) -> AlarmRecord: ...
    async def clear_alarm(self, app: str, device: str, tag: str, ts: int) -> AlarmRecord | None: ...
    async def active_alarms(self, app: str) -> list[AlarmRecord]: ...
    async def series(self, device: str, tag: str, start: int, end: int, limit: int) -> list[Point]: ...
    async def buckets(
        self, device: str, tag: str, start: int, end: int, every: int, agg: Agg
    ) -> list[Bucket]: ...
    async def audit(self, entry: AuditEntry) -> None: ...
    def subscribe(
        self, device: str, tag: str, maxsize: int
    ) -> contextlib.AbstractContextManager[Subscription]: ...


@dataclass(eq=False)
class AppContext(Generic[ConfigT]):
    """An app's view of the platform. Built by the host; apps never construct it."""

    manifest: Manifest
    config: ConfigT
    backend: AppBackend
    log: Any
    """structlog logger bound with app_id."""
    command_sender: CommandSender | None = None
    counters: AppCounters = field(default_factory=AppCounters)
    metrics: dict[str, float] = field(default_factory=dict)
    """The app's own figures (`ctx.metrics["windows"] = 3`); shown by GET /apps/{id}/metrics."""
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    identifiers: IdentifierRegistry | None = None
    """Mints identifiers for what the plant makes (`await ctx.identifiers.mint(kind, suffix, values)`);
    None where the platform runs without the identifier room."""
    _pending: list[DerivedPoint] = field(default_factory=list)
    _active: set[tuple[str, str]] = field(default_factory=set)

    @property
    def app_id(self) -> str:
        return self.manifest.id

    # --- derived series ----------------------------------------------------------------------------

    def derived_tag(self, name: str) -> str:
        """Derived tags are named '<app id>/<name>' so they never collide with a device's tags."""
        return f"{self.app_id}/{name}"

    def emit(
        self, device: str, name: str, value: Value, ts: int | None = None, unit: str | None = None
    ) -> None:
        """Queue a derived point; the host stores and publishes it after the current hook returns.

        Stored on `device` (a real device, or a new virtual one) as tag '<app id>/<name>'.
        """
        if len(self._pending) >= MAX_PENDING_EMITS:
            self.counters.drops += 1
            return
        self._pending.append(
            DerivedPoint(device, self.derived_tag(name), now_us() if ts is None else ts, value, 0, unit)
        )

    async def flush(self) -> int:
        """Store what was emitted (the host calls this after each hook); returns how many."""
        if not self._pending:
            return 0
        pending, self._pending = self._pending, []
        await self.backend.store_derived(self.app_id, pending)
        self.counters.emitted += len(pending)
        return len(pending)

    # --- alarms ------------------------------------------------------------------------------------

    async def raise_alarm(
        self, device: str, tag: str, severity: Severity, message: str, ts: int | None = None
    ) -> AlarmRecord:
        """Open an alarm on (device, tag), or update the one this app already has open there."""
        if severity not in SEVERITIES:
            raise ValueError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        record = await self.backend.raise_alarm(
            self.app_id, device, tag, severity, message, now_us() if ts is None else ts
        )
        if (device, tag) not in self._active:
            self._active.add((device, tag))
            self.counters.alarms += 1
        return record

    async def clear_alarm(self, device: str, tag: str, ts: int | None = None) -> AlarmRecord | None:
        self._active.discard((device, tag))
        return await self.backend.clear_alarm(self.app_id, device, tag, now_us() if ts is None else ts)

    async def active_alarms(self) -> list[AlarmRecord]:
        """This app's alarms still active (e.g. to resume state after a restart)."""
        return await self.backend.active_alarms(self.app_id)

    # --- history (same semantics as GET /api/series) ------------------------------------------------

    async def history(self, device: str, tag: str, start: int, end: int, limit: int = 10_000) -> list[Point]:
        """Raw points with start <= ts < end (µs), oldest first, at most `limit`."""
        return await self.backend.series(device, tag, start, end, limit)

    async def buckets(
        self, device: str, tag: str, start: int, end: int, every: int, agg: Agg = "avg"
    ) -> list[Bucket]:
        """One aggregate per `every` µs, aligned to the epoch; empty buckets left out."""
        return await self.backend.buckets(device, tag, start, end, every, agg)

    # --- live points beyond the manifest's reads ------------------------------------------------------

    @contextlib.contextmanager
    def subscribe(self, device: str, tag: str, maxsize: int = 1000) -> Iterator[Subscription]:
        """An extra live subscription (must lie within the manifest's `reads`)."""
        if not self.manifest.may_read(device, tag):
            raise PermissionDenied(f"app {self.app_id!r} may not read {device}:{tag} (manifest reads)")
        with self.backend.subscribe(device, tag, maxsize) as sub:
            yield sub

    # --- commands ----------------------------------------------------------------------------------

    async def write(self, device: str, tag: str, value: Value) -> WriteDone | DcmdDone:
        """Write a setpoint through the platform's command path, if the manifest allows it.

        Raises PermissionDenied, or a `CommandError` (e.g. `InvalidCommand` for a value out of range).
        """
        await self._check("write", device, tag, self.manifest.may_write(device, tag), repr(value))
        return await self._send("write", device, tag, (value,))

    async def call(self, device: str, method: str, *args: Value) -> CallDone:
        """Call a device method through the platform's command path, if the manifest allows it.

        Raises PermissionDenied, or a `CommandError` (e.g. `CommandTimedOut`).
        """
        await self._check("call", device, method, self.manifest.may_call(device, method), repr(args))
        return await self._send("call", device, method, args)

    async def _check(self, action: str, device: str, target: str, allowed: bool, detail: str) -> None:
        await self.backend.audit(AuditEntry(now_us(), self.app_id, action, device, target, allowed, detail))
        if not allowed:
            self.log.warning("app_permission_denied", action=action, device=device, target=target)
            field_name = "writes" if action == "write" else "calls"
            raise PermissionDenied(
                f"app {self.app_id!r} may not {action} {device}:{target}; its manifest's {field_name} "
                "does not allow it"
            )

    async def _send(self, action: str, device: str, target: str, args: tuple[Value, ...]) -> Any:
        if self.command_sender is None:
            raise RuntimeError("this platform has no command path yet (no command_sender)")
        return await self.command_sender(self.app_id, action, device, target, args)

    # --- HTTP --------------------------------------------------------------------------------------

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Serve `handler` at /apps/<app id>/<path> (exact path, e.g. 'status' or '')."""
        self.routes[(method.upper(), path.strip("/"))] = handler


class App(Generic[ConfigT]):
    """Base class of every app. Override the hooks you need; keep them async and non-blocking.

    Blocking work (files, heavy maths) belongs in `await asyncio.to_thread(...)`: a hook that holds
    the event loop longer than the host's budget is counted, and repeated offences stop the app.
    """

    Config: ClassVar[type[BaseModel]] = NoConfig

    def __init__(self, ctx: AppContext[ConfigT]) -> None:
        self.ctx = ctx
        self.config: ConfigT = ctx.config
        self.log = ctx.log

    @classmethod
    def subscriptions(cls, config: Any) -> tuple[str, ...] | None:
        """'device:tag' patterns to receive, when narrower than the manifest's `reads` (None: reads).

        Each must be allowed by `reads`; e.g. limit alarms subscribe to the tags their config names.
        """
        return None

    async def start(self) -> None:
        """Called once before any points arrive."""

    async def on_points(self, points: list[LivePoint]) -> None:
        """A batch of live points matching the manifest's `reads`, in commit order."""

    async def stop(self) -> None:
        """Called on a clean stop (shutdown, disable, restart); not after the app raised."""
