"""The replay harness: run an app on recorded or synthetic points, with no broker and no store.

Part of the public app API, so app authors can unit-test their logic::

    async with Replay(MyApp, config={"limit": 80}) as replay:
        await replay.feed([point("press-1", "Temp", 85.0, ts=0), ...])
    assert replay.active_alarms() == [...]

The app receives the same `AppContext` as in the platform, backed by memory: emitted points,
alarms, commands and audit entries are recorded on the `Replay` for the test to check; history
queries answer from the points fed and emitted so far. Only points matching the manifest's
`reads` reach the app, exactly as in the platform.
"""

from __future__ import annotations

import contextlib
import csv
import inspect
from collections.abc import Iterable, Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from plantwire.logs import get_logger
from plantwire.wire import JsonValue, Value
from plantwire_platform.apps.api import App, AppContext, AuditEntry
from plantwire_platform.apps.loader import subscription_patterns, validate_config
from plantwire_platform.apps.manifest import Manifest, read_manifest, split_pattern
from plantwire_platform.identifiers.registry import IdentifierRegistry
from plantwire_platform.ingest.live_bus import LivePoint, Subscription
from plantwire_platform.store.model import AGGREGATES, Agg, AlarmRecord, Bucket, DerivedPoint, Point

S: Final = 1_000_000
"""One second in µs (point times are µs since the epoch)."""


def point(device: str, tag: str, value: Value, ts: int, status: int = 0) -> LivePoint:
    """A live point as the platform delivers it (`ts` in µs)."""
    return LivePoint(device, tag, ts, value, status)


def points_from_csv(path: Path) -> list[LivePoint]:
    """Recorded points from a CSV file with a header `ts,device,tag,value` (ts in µs; numbers parsed)."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            text = row["value"]
            value: Value
            try:
                value = int(text)
            except ValueError:
                try:
                    value = float(text)
                except ValueError:
                    value = {"true": True, "false": False}.get(text, text)
            out.append(
                LivePoint(row["device"], row["tag"], int(row["ts"]), value, int(row.get("status") or 0))
            )
    return out


class MemoryBackend:
    """`AppBackend` in memory, with the store's semantics (one active alarm per key, ...)."""

    def __init__(self, command_result: Any = None) -> None:
        self.points: dict[tuple[str, str], list[Point]] = {}
        self.emitted: list[DerivedPoint] = []
        self.alarms: list[AlarmRecord] = []
        self.audit_log: list[AuditEntry] = []
        self.commands: list[tuple[str, str, str, tuple[Value, ...]]] = []
        self.command_result = command_result

    def record(self, p: LivePoint) -> None:
        self.points.setdefault((p.device, p.tag), []).append(Point(p.ts, p.value, p.status))

    async def store_derived(self, app: str, points: Sequence[DerivedPoint]) -> None:
        self.emitted.extend(points)
        for p in points:
            self.points.setdefault((p.device, p.tag), []).append(Point(p.ts, p.value, p.status))

    def _active(self, app: str, device: str, tag: str) -> int | None:
        for i, a in enumerate(self.alarms):
            if (a.app, a.device, a.tag, a.state) == (app, device, tag, "active"):
                return i
        return None

    async def raise_alarm(
        self, app: str, device: str, tag: str, severity: str, message: str, ts: int
    ) -> AlarmRecord:
        i = self._active(app, device, tag)
        if i is None:
            record = AlarmRecord(
                len(self.alarms) + 1,
                app,
                device,
                tag,
                severity,
                message,
                "active",
                ts,
                None,
                False,
                None,
                None,
            )
            self.alarms.append(record)
            return record
        old = self.alarms[i]
        self.alarms[i] = record = AlarmRecord(
            old.id, app, device, tag, severity, message, "active", old.raised_at, None, False, None, None
        )
        return record

    async def clear_alarm(self, app: str, device: str, tag: str, ts: int) -> AlarmRecord | None:
        i = self._active(app, device, tag)
        if i is None:
            return None
        old = self.alarms[i]
        self.alarms[i] = record = AlarmRecord(
            old.id,
            app,
            device,
            tag,
            old.severity,
            old.message,
            "cleared",
            old.raised_at,
            ts,
            False,
            None,
            None,
        )
        return record

    async def active_alarms(self, app: str) -> list[AlarmRecord]:
        return [a for a in self.alarms if a.app == app and a.state == "active"]

    async def series(self, device: str, tag: str, start: int, end: int, limit: int) -> list[Point]:
        pts = sorted(self.points.get((device, tag), []), key=lambda p: p.ts)
        return [p for p in pts if start <= p.ts < end][:limit]

    async def buckets(
        self, device: str, tag: str, start: int, end: int, every: int, agg: Agg
    ) -> list[Bucket]:
        if agg not in AGGREGATES or every <= 0:
            raise ValueError(f"bad aggregate {agg!r} or every {every}")
        groups: dict[int, list[Point]] = {}
        for p in await self.series(device, tag, start, end, 10**9):
            groups.setdefault(p.ts // every * every, []).append(p)
        out = []
        for b, pts in sorted(groups.items()):
            nums = [float(p.value) for p in pts if isinstance(p.value, int | float)]
            value: JsonValue
            if agg == "count":
                value = len(pts)
            elif agg == "last":
                value = pts[-1].value
            elif agg == "first":
                value = pts[0].value
            elif not nums:
                value = None
            else:
                value = {"avg": sum(nums) / len(nums), "min": min(nums), "max": max(nums)}[agg]
            out.append(Bucket(b, value, len(pts)))
        return out

    async def audit(self, entry: AuditEntry) -> None:
        self.audit_log.append(entry)

    @contextlib.contextmanager
    def subscribe(self, device: str, tag: str, maxsize: int) -> Iterator[Subscription]:
        yield Subscription(device, tag, maxsize)  # replay feeds hooks directly; nothing arrives here

    async def send(self, app_id: str, kind: str, device: str, target: str, args: tuple[Value, ...]) -> Any:
        self.commands.append((kind, device, target, args))
        return self.command_result


class Replay:
    """Runs one app on points you give it. Use as ``async with Replay(AppClass) as replay``."""

    def __init__(
        self,
        app_class: type[App],
        config: dict[str, Any] | None = None,
        manifest: Manifest | None = None,
        command_result: Any = None,
        identifiers: IdentifierRegistry | None = None,
    ) -> None:
        if manifest is None:
            manifest = read_manifest(Path(inspect.getfile(app_class)).resolve().parent)
        self.manifest = manifest
        self.backend = MemoryBackend(command_result)
        cfg = validate_config(manifest, app_class, config or {})
        self.ctx: AppContext[Any] = AppContext(
            manifest,
            cfg,
            self.backend,
            get_logger("plantwire.app").bind(app_id=manifest.id),
            self.backend.send,
            identifiers=identifiers,
        )
        self.app = app_class(self.ctx)
        self.patterns = [split_pattern(p) for p in subscription_patterns(manifest, app_class, cfg)]

    async def __aenter__(self) -> Replay:
        await self.app.start()
        await self.ctx.flush()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            await self.app.stop()
            await self.ctx.flush()

    async def feed(self, points: Iterable[LivePoint], batch_size: int = 1) -> None:
        """Hand the points (those the manifest reads) to the app, `batch_size` at a time, in order."""
        batch: list[LivePoint] = []
        for p in points:
            if not any(fnmatchcase(p.device, d) and fnmatchcase(p.tag, t) for d, t in self.patterns):
                continue
            self.backend.record(p)
            batch.append(p)
            if len(batch) >= batch_size:
                await self._deliver(batch)
                batch = []
        if batch:
            await self._deliver(batch)

    async def _deliver(self, batch: list[LivePoint]) -> None:
        self.ctx.counters.points_in += len(batch)
        await self.app.on_points(batch)
        await self.ctx.flush()

    # --- what the app did ------------------------------------------------------------------------------

    @property
    def emitted(self) -> list[DerivedPoint]:
        return self.backend.emitted

    def derived(self, device: str, name: str) -> list[tuple[int, Value]]:
        """(ts, value) of the derived series `name` (without the app-id prefix) on `device`."""
        tag = self.ctx.derived_tag(name)
        return [(p.ts, p.value) for p in self.backend.emitted if (p.device, p.tag) == (device, tag)]

    @property
    def alarms(self) -> list[AlarmRecord]:
        """Every alarm raised, in the order raised, in its current state."""
        return self.backend.alarms

    def active_alarms(self) -> list[AlarmRecord]:
        return [a for a in self.backend.alarms if a.state == "active"]

    @property
    def commands(self) -> list[tuple[str, str, str, tuple[Value, ...]]]:
        return self.backend.commands

    @property
    def audit(self) -> list[AuditEntry]:
        return self.backend.audit_log
