"""The app host: starts every enabled app in its own task, isolates it, restarts it when it fails.

Isolation, app by app (docs/apps.md "Isolation"):
- Each app has its own live subscriptions with bounded buffers (`queue_max_points`): an app that
  falls behind loses its own oldest points, counted in `drops`; ingest and other apps never wait.
- A hook that raises (or runs past `hook_timeout_s`) marks the app failed with the error, and its
  supervisor restarts it after a doubling, capped delay.
- Emits are bounded per hook (`MAX_PENDING_EMITS`, then dropped and counted) and stored in one
  store call after the hook returns.
- Synchronous code that holds the event loop cannot be pre-empted in Python. The host times every
  synchronous slice of every hook (each step of the hook's coroutine); a slice over
  `block_budget_ms` is logged and counted as an error, and after `block_strikes` of them the app is
  stopped and marked failed (no automatic restart: it would block again). Ingest is delayed only
  by the slices that happened, never by a queue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from plantwire.logs import get_logger
from plantwire_platform.apps.api import AppContext, AppCounters, AuditEntry, CommandSender
from plantwire_platform.apps.loader import (
    AppSpec,
    LoadProblem,
    discover,
    subscription_patterns,
    validate_config,
)
from plantwire_platform.apps.manifest import ManifestError, split_pattern
from plantwire_platform.identifiers.registry import IdentifierRegistry
from plantwire_platform.ingest.live_bus import LiveBus, LivePoint, Subscription
from plantwire_platform.settings import AppsSettings
from plantwire_platform.store.model import Agg, AlarmRecord, Bucket, DerivedPoint, Point, Store
from plantwire_platform.store.model import AuditEntry as StoreAuditEntry
from plantwire_platform.store.threads import StoreThreads

log = get_logger(__name__)

Status = Literal["starting", "running", "disabled", "failed", "stopped"]
T = TypeVar("T")
STOP_TIMEOUT_S: Final = 5.0
STORE_THREADS: Final = 2
AUDIT_KEEP: Final = 1000
HEALTHY_RUN_S: Final = 60.0
"""An app that ran this long before failing starts its backoff again from the first delay."""


class AppBlocked(Exception):
    """The app held the event loop over its budget too often."""


class PlatformBackend:
    """`AppBackend` on the platform's store (through threads) and live bus."""

    def __init__(self, store: Store, bus: LiveBus) -> None:
        self.store = store
        self.bus = bus
        self.audit_log: collections.deque[AuditEntry] = collections.deque(maxlen=AUDIT_KEEP)
        # Our own threads, so that shutdown can wait for every store call still running.
        self._threads = StoreThreads("pw-apps", STORE_THREADS)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._threads.run(fn, *args)

    async def close(self) -> None:
        """Wait for store calls still running in the threads (after the app tasks ended)."""
        await asyncio.to_thread(self._threads.close)

    async def store_derived(self, app: str, points: Sequence[DerivedPoint]) -> None:
        await self._in_thread(self.store.write_derived, app, points)
        self.bus.publish([LivePoint(p.device, p.tag, p.ts, p.value, p.status, app) for p in points])

    async def raise_alarm(
        self, app: str, device: str, tag: str, severity: str, message: str, ts: int
    ) -> AlarmRecord:
        return await self._in_thread(self.store.raise_alarm, app, device, tag, severity, message, ts)

    async def clear_alarm(self, app: str, device: str, tag: str, ts: int) -> AlarmRecord | None:
        return await self._in_thread(self.store.clear_alarm, app, device, tag, ts)

    async def active_alarms(self, app: str) -> list[AlarmRecord]:
        return await self._in_thread(self.store.list_alarms, True, None, app)

    async def series(self, device: str, tag: str, start: int, end: int, limit: int) -> list[Point]:
        return await self._in_thread(self.store.series, device, tag, start, end, limit)

    async def buckets(
        self, device: str, tag: str, start: int, end: int, every: int, agg: Agg
    ) -> list[Bucket]:
        return await self._in_thread(self.store.buckets, device, tag, start, end, every, agg)

    async def audit(self, entry: AuditEntry) -> None:
        # Every attempt is kept in memory and logged; a denied one also goes to the store's audit
        # trail (an allowed one is audited by the command path that carries it out).
        self.audit_log.append(entry)
        if not entry.allowed:
            record = StoreAuditEntry(
                id=0,
                ts=entry.ts,
                user=f"app:{entry.app}",
                action=entry.action,
                gateway=None,
                device=entry.device,
                command_id=None,
                request={"target": entry.target, "detail": entry.detail},
                outcome="rejected",
                http_status=403,
                status=None,
                message="the app's manifest does not allow this",
                rtt_ms=None,
            )
            await self._in_thread(self.store.add_audit, record)
        log.info(
            "app_command_audit",
            app_id=entry.app,
            action=entry.action,
            device=entry.device,
            target=entry.target,
            allowed=entry.allowed,
        )

    def subscribe(
        self, device: str, tag: str, maxsize: int
    ) -> contextlib.AbstractContextManager[Subscription]:
        return self.bus.subscribe(device, tag, maxsize)


class _Timed:
    """Drives a coroutine and times each synchronous step: how long it held the event loop."""

    def __init__(self, coro: Coroutine[Any, Any, T], on_slice: Any) -> None:
        self._coro = coro
        self._on_slice = on_slice

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self._coro
        send: Any = None
        error: BaseException | None = None
        while True:
            started = time.perf_counter()
            try:
                yielded = coro.send(send) if error is None else coro.throw(error)
            except StopIteration as stop:
                self._on_slice(time.perf_counter() - started)
                return stop.value
            except BaseException:
                self._on_slice(time.perf_counter() - started)
                raise
            self._on_slice(time.perf_counter() - started)
            try:
                send, error = (yield yielded), None
            except BaseException as err:  # delivered into the app's coroutine (cancellation too)
                send, error = None, err


@dataclass(eq=False)
class AppSlot:
    """One app's runtime state, as GET /api/apps shows it."""

    id: str
    spec: AppSpec | None
    enabled: bool
    status: Status = "stopped"
    error: str | None = None
    counters: AppCounters = field(default_factory=AppCounters)
    task: asyncio.Task[None] | None = None
    ctx: AppContext[Any] | None = None
    strikes: int = 0
    restarts: int = 0

    def as_json(self) -> dict[str, Any]:
        manifest = self.spec.manifest if self.spec else None
        return {
            "id": self.id,
            "name": manifest.name if manifest else self.id,
            "version": manifest.version if manifest else "",
            "api_version": manifest.api_version if manifest else 0,
            "status": self.status,
            "enabled": self.enabled,
            "error": self.error,
            "counters": self.counters.as_dict(),
            "routes": f"/apps/{self.id}/",
        }


class AppHost:
    """``async with AppHost(store, bus, settings) as host:`` runs the enabled apps until exit."""

    def __init__(
        self,
        store: Store,
        bus: LiveBus,
        settings: AppsSettings,
        command_sender: CommandSender | None = None,
        specs: tuple[list[AppSpec], list[LoadProblem]] | None = None,
        identifiers: IdentifierRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.identifiers = identifiers
        self.backend = PlatformBackend(store, bus)
        self.command_sender = command_sender
        self._specs = specs
        self.slots: dict[str, AppSlot] = {}
        self._group: asyncio.TaskGroup | None = None

    # --- lifecycle -----------------------------------------------------------------------------------

    async def __aenter__(self) -> AppHost:
        s = self.settings
        found = (
            self._specs if self._specs is not None else await asyncio.to_thread(discover, s.path, s.builtin)
        )
        specs, problems = found
        for problem in problems:
            self.slots.setdefault(problem.app, AppSlot(problem.app, None, False, "failed", problem.error))
        for spec in specs:
            app_id = spec.manifest.id
            wanted = (s.enabled is None or app_id in s.enabled) and app_id not in s.disabled
            self.slots[app_id] = AppSlot(app_id, spec, wanted, "stopped" if wanted else "disabled")
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        for slot in self.slots.values():
            if slot.enabled and slot.spec is not None:
                self._start(slot)
        log.info("app_host_started", apps=len(specs), running=sum(1 for x in self.slots.values() if x.task))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for slot in self.slots.values():
            if slot.task is not None:
                slot.task.cancel()
        assert self._group is not None
        await self._group.__aexit__(None, None, None)
        await self.backend.close()
        for slot in self.slots.values():
            if slot.status in ("running", "starting"):
                slot.status = "stopped"
        log.info("app_host_stopped")

    def get(self, app_id: str) -> AppSlot | None:
        return self.slots.get(app_id)

    def apps(self) -> list[dict[str, Any]]:
        return [slot.as_json() for slot in sorted(self.slots.values(), key=lambda x: x.id)]

    async def enable(self, app_id: str) -> AppSlot:
        slot = self.slots[app_id]
        slot.enabled = True
        if slot.spec is not None and slot.task is None:
            slot.error = None
            self._start(slot)
        return slot

    async def disable(self, app_id: str) -> AppSlot:
        slot = self.slots[app_id]
        slot.enabled = False
        await self._cancel(slot)
        if slot.spec is not None:
            slot.status = "disabled"
        return slot

    async def restart(self, app_id: str) -> AppSlot:
        slot = self.slots[app_id]
        await self._cancel(slot)
        slot.enabled = True
        if slot.spec is not None:
            slot.error = None
            self._start(slot)
        return slot

    def _start(self, slot: AppSlot) -> None:
        assert self._group is not None
        slot.strikes = 0
        slot.status = "starting"
        slot.task = self._group.create_task(self._supervise(slot), name=f"app-{slot.id}")

    async def _cancel(self, slot: AppSlot) -> None:
        task, slot.task = slot.task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if (current := asyncio.current_task()) is not None and current.cancelling():
                raise asyncio.CancelledError  # we were cancelled ourselves while waiting
        if slot.status in ("running", "starting"):
            slot.status = "stopped"

    # --- supervision -----------------------------------------------------------------------------------

    async def _supervise(self, slot: AppSlot) -> None:
        """The app task's root: run, and after a failure wait and run again."""
        assert slot.spec is not None
        loop = asyncio.get_running_loop()
        delay = self.settings.restart_first_s
        while True:
            started = loop.time()
            slot.status = "starting"
            try:
                await self._run_once(slot, slot.spec)
                return
            except ManifestError as err:  # bad config: the app stays off until its config is fixed
                slot.status, slot.error, slot.enabled = "disabled", str(err), False
                log.error("app_config_invalid", app_id=slot.id, error=str(err))
                return
            except AppBlocked as err:
                slot.status, slot.error = "failed", str(err)
                log.error("app_stopped_blocking", app_id=slot.id, error=str(err))
                return
            except Exception as err:  # the app's own task root: keep the platform running
                slot.status, slot.error = "failed", f"{type(err).__name__}: {err}"
                slot.counters.errors += 1
                log.exception("app_failed", app_id=slot.id, restart_in_s=delay)
            if loop.time() - started > HEALTHY_RUN_S:
                delay = self.settings.restart_first_s
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.restart_max_s)
            slot.restarts += 1

    def _timed(self, slot: AppSlot, coro: Coroutine[Any, Any, T], hook: str) -> Awaitable[T]:
        budget = self.settings.block_budget_ms / 1000

        def on_slice(seconds: float) -> None:
            if seconds > budget:
                slot.strikes += 1
                slot.counters.errors += 1
                log.warning(
                    "app_blocked_event_loop",
                    app_id=slot.id,
                    hook=hook,
                    ms=round(seconds * 1000),
                    strikes=slot.strikes,
                )

        return _Timed(coro, on_slice)

    async def _hook(
        self, slot: AppSlot, ctx: AppContext[Any], coro: Coroutine[Any, Any, None], hook: str
    ) -> None:
        async with asyncio.timeout(self.settings.hook_timeout_s):
            await self._timed(slot, coro, hook)
            await ctx.flush()
        if slot.strikes >= self.settings.block_strikes:
            raise AppBlocked(
                f"held the event loop over the {self.settings.block_budget_ms} ms budget "
                f"{slot.strikes} times (last in {hook}); move blocking work into asyncio.to_thread"
            )

    async def _run_once(self, slot: AppSlot, spec: AppSpec) -> None:
        manifest = spec.manifest
        config = validate_config(manifest, spec.app_class, self.settings.config.get(manifest.id, {}))
        ctx: AppContext[Any] = AppContext(
            manifest, config, self.backend, log.bind(app_id=manifest.id), self.command_sender, slot.counters
        )
        ctx.identifiers = self.identifiers
        slot.ctx = ctx
        app = spec.app_class(ctx)
        patterns = subscription_patterns(manifest, spec.app_class, config)
        with contextlib.ExitStack() as stack:
            subs = [
                stack.enter_context(self.backend.subscribe(*split_pattern(p), self.settings.queue_max_points))
                for p in patterns
            ]
            await self._hook(slot, ctx, app.start(), "start")
            slot.status = "running"  # the last error stays visible until a manual restart or enable
            log.info("app_running", app_id=slot.id, version=manifest.version)
            dropped = 0
            try:
                while True:
                    points = [p for p in await _next_points(subs) if p.derived_by != manifest.id]
                    total = sum(s.dropped for s in subs)
                    slot.counters.drops += total - dropped
                    dropped = total
                    if not points:
                        continue
                    slot.counters.points_in += len(points)
                    await self._hook(slot, ctx, app.on_points(points), "on_points")
            except asyncio.CancelledError:
                try:
                    async with asyncio.timeout(STOP_TIMEOUT_S):
                        await app.stop()
                        await ctx.flush()
                except Exception:  # stopping anyway: log the app's error, finish the cancellation
                    log.exception("app_stop_failed", app_id=slot.id)
                raise


async def _next_points(subs: list[Subscription]) -> list[LivePoint]:
    """The next points of any subscription, merged in source-time order; waits forever with none."""
    if not subs:
        await asyncio.Event().wait()
    if len(subs) == 1:
        return await subs[0].next_batch()
    waiters = [asyncio.ensure_future(s.next_batch()) for s in subs]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
    # A waiter that finished is kept; a cancelled one had taken nothing.
    points = [p for w in waiters if w.done() and not w.cancelled() for p in w.result()]
    points += [p for s in subs for p in s.take()]
    points.sort(key=lambda p: p.ts)
    return points
