"""The platform's storage interface: what ingest writes and what the API and apps read.

Two halves, `TimeSeries` (points) and `Catalog` (devices, tags, alarms, audit), which every backend
implements together as a `Store` (SQLite embedded by default; InfluxDB in deployments, with its
catalog in a local SQLite file). Code that needs one half asks for that protocol only.
All methods are synchronous and may block: the ingest writer calls the write side from its
own thread, and async code calls the read side through `asyncio.to_thread`.

Times are integers, microseconds since the Unix epoch, UTC (the wire's unit).
Writes are idempotent: a point is identified by (device, tag, source timestamp), so a message
that MQTT delivers twice never creates a second copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson

from plantwire.wire import DataBatch, DeviceMeta, DeviceStatus, GatewayStatus, JsonValue, Value

if TYPE_CHECKING:
    from plantwire_platform.store.device_changes import ChangeCursor, DeviceChange
    from plantwire_platform.store.device_query import DevicePage, DeviceQuery

Agg = Literal["avg", "min", "max", "last", "count", "first"]
AGGREGATES: tuple[Agg, ...] = ("avg", "min", "max", "last", "count", "first")


class StoreError(Exception):
    """The store could not do what was asked (disk full, database locked too long, ...)."""


@dataclass(frozen=True, slots=True)
class IncomingBatch:
    """A decoded data message and where it came from."""

    gateway: str
    device: str
    batch: DataBatch


@dataclass(frozen=True, slots=True)
class Registration:
    """A decoded meta or status message for the catalog; `device` is None for a gateway's status."""

    gateway: str
    device: str | None
    body: DeviceMeta | DeviceStatus | GatewayStatus

    def __post_init__(self) -> None:
        if (self.device is None) != isinstance(self.body, GatewayStatus):
            raise ValueError("a gateway status has no device; a meta or device status has one")


@dataclass(frozen=True, slots=True)
class WriteResult:
    stored: int
    """Points newly stored."""
    duplicates: int
    """Points already present (redelivered messages); ignored."""
    seq_gaps: int
    """Messages missing between consecutive sequence numbers seen in this write, per device, summed."""
    seq_jumps: int = 0
    """Messages whose `seq` jumped further than the store's `max_seq_jump` (store/seq_tracking.py)."""


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    id: str
    gateway: str
    endpoint: str | None
    state: str
    """'online', 'connecting', 'offline' (from the device status), or 'unknown' before any status."""
    state_since: int | None
    error: str | None
    gateway_state: str
    """'online', 'offline' or 'unknown', from the gateway's status."""
    tag_count: int
    first_seen: int
    last_data: int | None
    """Source timestamp of the newest stored point of this device."""
    last_seq: int
    """Highest data-message sequence number stored for this device (0 if none)."""
    gateway_since: int | None = None
    """Since when the gateway has its state (from its status), None before any status."""


@dataclass(frozen=True, slots=True)
class TagRecord:
    device: str
    tag: str
    node_id: str | None
    data_type: str | None
    unit: str | None
    description: str | None
    writable: bool
    low: float | None
    high: float | None
    derived_by: str | None = None
    """The app that computes this series, or None for a device's own tag."""
    dims: tuple[int, ...] | None = None
    """Array dimensions from meta (0 = any length); None for a scalar (docs/wire.md)."""
    enum: dict[int, str] | None = None
    """An enumeration's names by value, from meta; the points carry the integer."""
    locale: str | None = None
    """A LocalizedText's locale, from meta."""


@dataclass(frozen=True, slots=True)
class DerivedPoint:
    """A point an app computed; stored like device data, its series marked with the app's id."""

    device: str
    tag: str
    ts: int
    value: Value
    status: int = 0
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """An alarm an app raised: at most one active per (app, device, tag)."""

    id: int
    app: str
    device: str
    tag: str
    severity: str
    """'info', 'warning' or 'critical'."""
    message: str
    state: str
    """'active' or 'cleared'."""
    raised_at: int
    cleared_at: int | None
    acked: bool
    acked_at: int | None
    acked_by: str | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> AlarmRecord:
        """From a row of the alarms table: id, app, device, tag, severity, message, state,
        raised_at, cleared_at, acked_at, acked_by (both backends select these columns)."""
        i, app, device, tag, severity, message, state, raised, cleared, acked_at, acked_by = row
        return cls(
            id=i,
            app=app,
            device=device,
            tag=tag,
            severity=severity,
            message=message,
            state=state,
            raised_at=raised,
            cleared_at=cleared,
            acked=acked_at is not None,
            acked_at=acked_at,
            acked_by=acked_by,
        )


@dataclass(frozen=True, slots=True)
class Point:
    ts: int
    value: JsonValue
    status: int


@dataclass(frozen=True, slots=True)
class LatestValue:
    tag: str
    ts: int
    value: JsonValue
    status: int
    unit: str | None


@dataclass(frozen=True, slots=True)
class Bucket:
    start: int
    """Start of the bucket (µs); buckets are aligned to multiples of `every` since the epoch."""
    value: JsonValue
    """The aggregate; None when the bucket holds no numeric value (avg/min/max of strings)."""
    count: int
    """How many points fell into the bucket."""
    skipped: int = 0
    """Points left out of an element-wise avg/min/max: arrays or structures of another shape."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One command someone gave (or tried to give): who, what, when, and how it ended."""

    id: int
    """Assigned by the store (0 before it is added); grows with every entry."""
    ts: int
    user: str
    action: str
    """'write', 'call', 'attach' or 'detach'."""
    gateway: str | None
    device: str | None
    command_id: str | None
    request: dict[str, Any]
    outcome: str
    """'ok', 'rejected' (before sending), 'failed' (the gateway or device said no) or 'timeout'."""
    http_status: int
    status: int | None
    """OPC UA status code, when the device answered."""
    message: str | None
    rtt_ms: float | None

    def column_values(self) -> tuple[Any, ...]:
        """Every column but `id`, in field order, `request` as JSON text: what both backends insert."""
        return (
            self.ts,
            self.user,
            self.action,
            self.gateway,
            self.device,
            self.command_id,
            orjson.dumps(self.request).decode(),
            self.outcome,
            self.http_status,
            self.status,
            self.message,
            self.rtt_ms,
        )


class TimeSeries(Protocol):
    """Points: device values and app-derived values, keyed (device, tag, source timestamp)."""

    # --- write side: the ingest writer thread (device points), the app host (derived points) -----
    def write_batches(self, batches: Sequence[IncomingBatch]) -> WriteResult:
        """Store the points of many messages in one transaction, committed before returning."""
        ...

    def write_derived(self, app: str, points: Sequence[DerivedPoint]) -> int:
        """Store points an app computed (idempotent like device points); returns how many were new.

        A device not known yet (a virtual device of the app) is registered with gateway 'apps'.
        """
        ...

    # --- read side: any thread -------------------------------------------------------------------
    def latest(self, device: str) -> list[LatestValue]:
        """The newest point of every tag of the device (tags with no point are left out)."""
        ...

    def series(self, device: str, tag: str, start: int, end: int, limit: int) -> list[Point]:
        """Raw points with start <= ts < end, oldest first, at most `limit`."""
        ...

    def buckets(self, device: str, tag: str, start: int, end: int, every: int, agg: Agg) -> list[Bucket]:
        """Aggregates per bucket of `every` µs, oldest first; empty buckets are left out.

        avg/min/max use numeric values only (booleans count as 0/1); first, last and count use all.
        Arrays and structures aggregate element by element, UInt64 exactly (store/value_shapes.py).
        """
        ...

    def count_points(self) -> int:
        """Total points stored (for health and tests)."""
        ...

    def rollup_backlog(self) -> int | None:
        """Stored points not merged into the rollups yet, as the rollup merger counted them at the
        start of its last sweep (no store query: /metrics reads it); None before a first sweep or
        without rollups (InfluxDB)."""
        ...


class Catalog(Protocol):
    """What is known about the plant besides its values: devices and tags, alarms, the audit."""

    # --- devices and tags: written by the ingest writer thread, read from any thread -------------
    def apply_meta(self, gateway: str, device: str, meta: DeviceMeta) -> None:
        """Register the device and upsert its tags (tags not in `meta` are kept, not deleted)."""
        ...

    def apply_device_status(self, gateway: str, device: str, status: DeviceStatus) -> None: ...

    def apply_gateway_status(self, gateway: str, status: GatewayStatus) -> None: ...

    def apply_registrations(self, registrations: Sequence[Registration]) -> None:
        """Apply many meta and status messages in one transaction: the same result as applying them
        one by one in order (the same device may appear several times), or nothing (StoreError)."""
        ...

    def list_devices(self) -> list[DeviceRecord]: ...

    def page_devices(self, query: DeviceQuery) -> DevicePage:
        """One page of the devices matching the query's filters, ordered by id, with their total."""
        ...

    def gateway_device_counts(self) -> list[tuple[str, int]]:
        """(gateway, how many devices it has), for every gateway that has devices, ordered by gateway."""
        ...

    def changed_devices(self, after: ChangeCursor, limit: int) -> list[DeviceChange]:
        """Devices created or moved (gateway, endpoint) after the cursor, in change order, at most `limit`.

        store/device_changes.py: one indexed range, so a follower of the list never reads it all.
        """
        ...

    def get_device(self, device: str) -> DeviceRecord | None: ...

    def list_tags(self, device: str) -> list[TagRecord]: ...

    # --- device ownership (store/ownership_table.py): ingest claims, an admin moves --------------
    def device_owner(self, device: str) -> str | None:
        """The gateway that owns the device (None: no gateway has registered it yet)."""
        ...

    def claim_device(self, gateway: str, device: str) -> str:
        """The device's owner, which becomes `gateway` if it has none yet (atomic)."""
        ...

    def claim_devices(self, claims: Sequence[tuple[str, str]]) -> dict[str, str]:
        """`claim_device` for many (gateway, device) pairs in order, in one transaction: each device's
        owner (a device named twice goes to its first pair's gateway if it had no owner)."""
        ...

    def move_device(self, device: str, gateway: str) -> str | None:
        """Give the device to `gateway` (commands follow); the previous owner, None if unknown."""
        ...

    # --- alarms (any thread; writes serialised inside the store) ----------------------------------
    def raise_alarm(
        self, app: str, device: str, tag: str, severity: str, message: str, ts: int
    ) -> AlarmRecord:
        """Open an alarm, or update severity and message of the one already active for the key."""
        ...

    def clear_alarm(self, app: str, device: str, tag: str, ts: int) -> AlarmRecord | None:
        """Clear the active alarm of the key; None when none is active."""
        ...

    def ack_alarm(self, alarm_id: int, by: str, ts: int) -> AlarmRecord | None:
        """Acknowledge an alarm (active or cleared); None for an unknown id. Acking twice keeps the first."""
        ...

    def list_alarms(
        self, active_only: bool = False, device: str | None = None, app: str | None = None, limit: int = 1000
    ) -> list[AlarmRecord]:
        """Newest first."""
        ...

    # --- audit of commands (any thread) -----------------------------------------------------------
    def add_audit(self, entry: AuditEntry) -> AuditEntry:
        """Keep an audit entry; returns it with its id."""
        ...

    def list_audit(
        self, limit: int = 100, device: str | None = None, before_id: int | None = None
    ) -> list[AuditEntry]:
        """Newest first; `before_id` pages back."""
        ...

    def prune_audit(self, keep_rows: int, before_ts: int) -> int:
        """Retention: delete entries older than `before_ts` and all but the newest `keep_rows`."""
        ...


class Store(TimeSeries, Catalog, Protocol):
    """A backend: both halves on one object (InfluxDB keeps its catalog in a local SQLite file)."""

    def close(self) -> None: ...
