"""`Store` on InfluxDB 2, through influxdb-client's async API (the deployed stack's backend).

The Store interface is synchronous (the ingest writer thread writes, async code reads through
`asyncio.to_thread`), while influxdb-client's async client must live on one event loop. So the store
owns a private event loop in a dedicated thread; every method submits a coroutine to it
(`asyncio.run_coroutine_threadsafe`) and waits for the answer. Reads from many threads share the
client's connection pool on that loop.

Writes never lose points: `write_batches` returns only once InfluxDB accepted every line, retrying
with capped exponential backoff; after `write_timeout_s` it raises `StoreError`, and the ingest (which
acknowledges MQTT messages only after a successful return) retries the whole write. Re-sending is
harmless: a point's identity is (measurement, tag set, timestamp), so InfluxDB overwrites a point
with itself. Duplicates are counted from sequence numbers (a message whose `seq` is not above the
device's last one is a redelivery), since InfluxDB does not say whether a point was new.

Data model and Flux: `line_protocol.py`. Registry of devices and tags: `registry.py`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine, Sequence
from typing import Any, Final, TypeVar

import aiohttp
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.flux_table import TableList
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.client.write_api import WritePrecision
from influxdb_client.rest import ApiException
from influxdb_client.service.buckets_service import BucketsService

from plantwire.config import ConfigError
from plantwire.logs import get_logger
from plantwire.loop_thread import LoopThread
from plantwire.timeunits import from_datetime
from plantwire.wire import DeviceMeta, DeviceStatus, GatewayStatus, Value
from plantwire_platform.store.device_changes import ChangeCursor, DeviceChange
from plantwire_platform.store.device_query import DevicePage, DeviceQuery
from plantwire_platform.store.influx.line_protocol import (
    FIELD_BOOL,
    FIELD_STATUS,
    FIELD_STR,
    FIELD_VALUE,
    FIELDS,
    MAX_TIME_US,
    MEASUREMENT,
    TAG_DEVICE,
    TAG_GATEWAY,
    TAG_TAG,
    buckets_flux,
    clamp_range,
    escape_tag,
    latest_flux,
    line,
    series_flux,
    series_key,
)
from plantwire_platform.store.influx.registry import InfluxRegistry, WriteOutcome
from plantwire_platform.store.influx.settings import InfluxSettings
from plantwire_platform.store.model import (
    AGGREGATES,
    Agg,
    AlarmRecord,
    AuditEntry,
    Bucket,
    DerivedPoint,
    DeviceRecord,
    IncomingBatch,
    LatestValue,
    Point,
    Registration,
    StoreError,
    TagRecord,
    WriteResult,
)
from plantwire_platform.store.seq_tracking import DEFAULT_MAX_SEQ_JUMP, advance

__all__ = [
    "FIELDS",
    "FIELD_BOOL",
    "FIELD_STATUS",
    "FIELD_STR",
    "FIELD_VALUE",
    "MEASUREMENT",
    "TAG_DEVICE",
    "TAG_GATEWAY",
    "TAG_TAG",
    "InfluxSettings",
    "InfluxStore",
]

log = get_logger(__name__)

T = TypeVar("T")
BOOLEAN: Final = "Boolean"
INTEGER_TYPES: Final = frozenset(
    {"SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64", "StatusCode"}
)
_RETRY_FIRST_S: Final = 0.1
_RETRY_MAX_S: Final = 5.0


def _describe(err: BaseException, url: str, bucket: str) -> str:
    """One line saying what went wrong talking to InfluxDB, without secrets."""
    if isinstance(err, ApiException):
        detail = err.message if isinstance(err, InfluxDBError) and err.message else err.reason
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        detail = " ".join(str(detail).split())[:200]
        if err.status == 401:
            return f"InfluxDB at {url} rejected the token (401 unauthorized: {detail})"
        if err.status == 403:
            return f"the InfluxDB token may not use bucket {bucket!r} (403 forbidden: {detail})"
        if err.status == 404:
            return (
                f"InfluxDB at {url}: not found (404: {detail}); check the organisation and bucket {bucket!r}"
            )
        return f"InfluxDB at {url} answered {err.status}: {detail}"
    if isinstance(err, TimeoutError):
        return f"InfluxDB at {url} did not answer in time"
    if isinstance(err, aiohttp.ClientConnectorError):
        return f"cannot reach InfluxDB at {url}: {err.os_error.strerror or err.os_error}"
    if isinstance(err, aiohttp.ClientError | OSError):
        return f"InfluxDB at {url}: connection failed: {type(err).__name__}: {err}"
    return f"InfluxDB at {url}: {type(err).__name__}: {err}"


_TRANSIENT: Final = (aiohttp.ClientError, OSError, TimeoutError)


def _retryable(err: BaseException) -> bool:
    if isinstance(err, ApiException):
        # 400 is a malformed request (a bug: retrying cannot help); anything else may heal.
        return err.status != 400
    return isinstance(err, _TRANSIENT)


class InfluxStore:
    """`Store` on an InfluxDB 2 bucket. Open with `InfluxStore.open(settings)`; thread-safe."""

    def __init__(self, settings: InfluxSettings, registry: InfluxRegistry, loop: LoopThread) -> None:
        self.settings = settings
        self._registry = registry
        self._loop = loop
        self._client: InfluxDBClientAsync | None = None
        self._closed = False
        self.max_seq_jump = DEFAULT_MAX_SEQ_JUMP
        """Steps of `seq` beyond this are counted as jumps, not gaps (store/seq_tracking.py)."""
        self.write_attempts_failed = 0
        """Failed HTTP write attempts since start (each was retried); for stats and tests."""

    # --- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def open(cls, settings: InfluxSettings) -> InfluxStore:
        """Connect and check the token, organisation and bucket; problems raise one-line `ConfigError`."""
        token = settings.token.get_secret_value() if settings.token is not None else ""
        if not token:
            raise ConfigError(
                "no InfluxDB token: set PLANTWIRE_STORE__INFLUXDB__TOKEN to a token that can read "
                f"and write bucket {settings.bucket!r}"
            )
        registry = InfluxRegistry.open(settings.registry_path)
        store = cls(settings, registry, LoopThread("influx-store"))
        try:
            store._loop.run(store._start(token), settings.startup_timeout_s + settings.request_timeout_s + 5)
        except BaseException:
            store.close()
            raise
        log.info("influx_store_opened", url=settings.url, org=settings.org, bucket=settings.bucket)
        return store

    async def _start(self, token: str) -> None:
        s = self.settings
        timeout_ms = int(s.request_timeout_s * 1000)
        self._client = InfluxDBClientAsync(url=s.url, token=token, org=s.org, timeout=timeout_ms)
        deadline = asyncio.get_running_loop().time() + s.startup_timeout_s
        delay = _RETRY_FIRST_S
        while True:
            try:
                await self._check_bucket()
                return
            except ApiException as err:
                if err.status is None or err.status < 500:
                    raise ConfigError(_describe(err, s.url, s.bucket)) from None
                problem = _describe(err, s.url, s.bucket)  # starting or overloaded: wait for it
            except _TRANSIENT as err:
                problem = _describe(err, s.url, s.bucket)
            if asyncio.get_running_loop().time() + delay > deadline:
                raise ConfigError(f"{problem} (gave up after {s.startup_timeout_s:g} s)")
            log.warning("influx_not_ready", url=s.url, error=problem)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)

    async def _check_bucket(self) -> None:
        assert self._client is not None
        s = self.settings
        service = BucketsService(self._client.api_client)
        found = await service.get_buckets_async(name=s.bucket, org=s.org)
        if not any(b.name == s.bucket for b in (found.buckets or [])):
            raise ConfigError(
                f"InfluxDB at {s.url} has no bucket {s.bucket!r} in organisation {s.org!r} "
                "(or the token may not read it); create it or set PLANTWIRE_STORE__INFLUXDB__BUCKET"
            )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            try:
                self._loop.run(client.close(), 10)
            except (TimeoutError, aiohttp.ClientError, OSError) as err:
                log.warning("influx_close_failed", error=str(err))
        self._loop.stop()
        self._registry.close()

    def __enter__(self) -> InfluxStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        if self._closed:
            coro.close()
            raise StoreError("the store is closed")
        try:
            return self._loop.run(coro, timeout)
        except TimeoutError:
            raise StoreError(f"InfluxDB at {self.settings.url} did not answer within {timeout:g} s") from None

    # --- write side ------------------------------------------------------------------------------

    def write_batches(self, batches: Sequence[IncomingBatch]) -> WriteResult:
        registry = self._registry
        lines: list[str] = []
        seen: set[tuple[str, str, int]] = set()
        seq_now: dict[str, int] = {}
        gateways: dict[str, str] = {}
        last_data: dict[str, int] = {}
        new_series: dict[tuple[str, str], str | None] = {}
        keys: dict[tuple[str, str, str], str] = {}
        duplicates = gaps = dropped = jumps = 0
        for item in batches:
            device, gateway = item.device, item.gateway
            gateways.setdefault(device, gateway)
            last = seq_now.get(device)
            if last is None:
                last = registry.last_seq(device)
            seq = item.batch.seq
            redelivery = seq <= last
            step = advance(last, seq, self.max_seq_jump)
            gaps += step.gaps
            jumps += step.jumped
            if step.last != last:
                seq_now[device] = step.last
            for s in item.batch.samples:
                if not 0 <= s.ts <= MAX_TIME_US:
                    dropped += 1
                    continue
                ident = (device, s.tag, s.ts)
                if redelivery or ident in seen:
                    duplicates += 1
                else:
                    seen.add(ident)
                key = keys.get((device, gateway, s.tag))
                if key is None:
                    key = keys[(device, gateway, s.tag)] = series_key(device, gateway, s.tag)
                    if not registry.knows_series(device, s.tag):
                        new_series.setdefault((device, s.tag), BOOLEAN if isinstance(s.value, bool) else None)
                lines.append(line(key, s.ts, s.value, s.status))
                if s.ts > last_data.get(device, -1):
                    last_data[device] = s.ts
        if dropped:
            log.warning("influx_points_out_of_range", dropped=dropped, max_ts=MAX_TIME_US)
        if lines:
            limit = self.settings.write_timeout_s + self.settings.request_timeout_s + 5
            self._run(self._write_lines(lines), limit)
        stored = len(lines) - duplicates
        registry.record_write(
            WriteOutcome(
                devices=gateways,
                last_seq=seq_now,
                last_data=last_data,
                new_series=[(d, t, dt) for (d, t), dt in new_series.items()],
                stored=stored,
            )
        )
        return WriteResult(stored=stored, duplicates=duplicates + dropped, seq_gaps=gaps, seq_jumps=jumps)

    async def _write_lines(self, lines: list[str]) -> None:
        s = self.settings
        step = s.max_lines_per_request
        deadline = asyncio.get_running_loop().time() + s.write_timeout_s
        for i in range(0, len(lines), step):
            await self._write_chunk("\n".join(lines[i : i + step]).encode(), deadline)

    async def _write_chunk(self, body: bytes, deadline: float) -> None:
        """One request, retried with capped, jittered backoff until it succeeds or `deadline` passes."""
        s = self.settings
        loop = asyncio.get_running_loop()
        delay = _RETRY_FIRST_S
        while True:
            if self._client is None:
                raise StoreError("the store is closed")
            try:
                await self._client.write_api().write(
                    bucket=s.bucket,
                    org=s.org,
                    record=body,
                    write_precision=WritePrecision.US,  # type: ignore[arg-type]  # WritePrecision.US is a plain str constant
                )
                return
            except ApiException as err:
                if err.status == 422:
                    # Partial write: InfluxDB kept the rest (points outside the bucket's retention were
                    # dropped); those points can never be stored, so retrying would only block ingest.
                    log.warning("influx_partial_write", error=_describe(err, s.url, s.bucket))
                    return
                error: BaseException = err
            except _TRANSIENT as err:
                error = err
            message = _describe(error, s.url, s.bucket)
            self.write_attempts_failed += 1
            if not _retryable(error) or loop.time() + delay > deadline:
                raise StoreError(f"write to InfluxDB failed: {message}") from None
            log.warning("influx_write_retry", error=message, retry_in_s=round(delay, 3))
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, _RETRY_MAX_S)

    def write_derived(self, app: str, points: Sequence[DerivedPoint]) -> int:
        """Ordinary points with an extra `derived_by` tag; the registry marks their series."""
        lines: list[str] = []
        last_data: dict[str, int] = {}
        series: dict[tuple[str, str], DerivedPoint] = {}
        for p in points:
            if not 0 <= p.ts <= MAX_TIME_US:
                continue
            key = (
                f"{MEASUREMENT},derived_by={escape_tag(app)},device={escape_tag(p.device)},"
                f"gateway=apps,tag={escape_tag(p.tag)}"
            )
            lines.append(line(key, p.ts, p.value, p.status))
            last_data[p.device] = max(p.ts, last_data.get(p.device, -1))
            series.setdefault((p.device, p.tag), p)
        if not lines:
            return 0
        limit = self.settings.write_timeout_s + self.settings.request_timeout_s + 5
        self._run(self._write_lines(lines), limit)
        new = [
            (d, t, BOOLEAN if isinstance(p.value, bool) else None)
            for (d, t), p in series.items()
            if not self._registry.knows_series(d, t)
        ]
        self._registry.record_write(
            WriteOutcome(
                devices=dict.fromkeys(last_data, "apps"),
                last_seq={},
                last_data=last_data,
                new_series=new,
                stored=len(lines),
            )
        )
        self._registry.mark_derived(app, [(d, t, p.unit) for (d, t), p in series.items()])
        return len(lines)

    def raise_alarm(
        self, app: str, device: str, tag: str, severity: str, message: str, ts: int
    ) -> AlarmRecord:
        return self._registry.alarms.raise_alarm(app, device, tag, severity, message, ts)

    def clear_alarm(self, app: str, device: str, tag: str, ts: int) -> AlarmRecord | None:
        return self._registry.alarms.clear_alarm(app, device, tag, ts)

    def ack_alarm(self, alarm_id: int, by: str, ts: int) -> AlarmRecord | None:
        return self._registry.alarms.ack_alarm(alarm_id, by, ts)

    def list_alarms(
        self, active_only: bool = False, device: str | None = None, app: str | None = None, limit: int = 1000
    ) -> list[AlarmRecord]:
        return self._registry.alarms.list_alarms(active_only, device, app, limit)

    def add_audit(self, entry: AuditEntry) -> AuditEntry:
        return self._registry.audit.add(entry)

    def prune_audit(self, keep_rows: int, before_ts: int) -> int:
        return self._registry.audit.prune(keep_rows, before_ts)

    def list_audit(
        self, limit: int = 100, device: str | None = None, before_id: int | None = None
    ) -> list[AuditEntry]:
        return self._registry.audit.list(limit, device, before_id)

    def apply_meta(self, gateway: str, device: str, meta: DeviceMeta) -> None:
        self._registry.apply_meta(gateway, device, meta)

    def apply_device_status(self, gateway: str, device: str, status: DeviceStatus) -> None:
        self._registry.apply_device_status(gateway, device, status)

    def apply_gateway_status(self, gateway: str, status: GatewayStatus) -> None:
        self._registry.apply_gateway_status(gateway, status)

    def apply_registrations(self, registrations: Sequence[Registration]) -> None:
        self._registry.apply_registrations(registrations)

    # --- read side -------------------------------------------------------------------------------

    def list_devices(self) -> list[DeviceRecord]:
        return self._registry.list_devices()

    def page_devices(self, query: DeviceQuery) -> DevicePage:
        return self._registry.page_devices(query)

    def gateway_device_counts(self) -> list[tuple[str, int]]:
        return self._registry.gateway_device_counts()

    def changed_devices(self, after: ChangeCursor, limit: int) -> list[DeviceChange]:
        return self._registry.changed_devices(after, limit)

    def get_device(self, device: str) -> DeviceRecord | None:
        return self._registry.get_device(device)

    def list_tags(self, device: str) -> list[TagRecord]:
        return self._registry.list_tags(device)

    def device_owner(self, device: str) -> str | None:
        return self._registry.owners.owner(device)

    def claim_device(self, gateway: str, device: str) -> str:
        return self._registry.owners.claim(gateway, device)

    def claim_devices(self, claims: Sequence[tuple[str, str]]) -> dict[str, str]:
        return self._registry.owners.claim_many(claims)

    def move_device(self, device: str, gateway: str) -> str | None:
        return self._registry.owners.move(device, gateway)

    def count_points(self) -> int:
        """Points stored through this registry (a counter, so health checks never scan InfluxDB)."""
        return self._registry.count_points()

    def rollup_backlog(self) -> int | None:
        return None  # InfluxDB aggregates at query time: no rollups here

    def _query(self, flux: str) -> TableList:
        return self._run(self._query_async(flux), self.settings.request_timeout_s + 5)

    async def _query_async(self, flux: str) -> TableList:
        if self._client is None:
            raise StoreError("the store is closed")
        try:
            return await self._client.query_api().query(flux, org=self.settings.org)
        except (ApiException, *_TRANSIENT) as err:
            raise StoreError(
                f"query to InfluxDB failed: {_describe(err, self.settings.url, self.settings.bucket)}"
            ) from None

    def _typed(self, device: str, tag: str, row: dict[str, Any]) -> Value:
        """A point's value from its fields: text, boolean, or number (int for integer-typed tags)."""
        text = row.get(FIELD_STR)
        if text is not None:
            return str(text)
        flag = row.get(FIELD_BOOL)
        if flag is not None:
            return bool(flag)
        number = row.get(FIELD_VALUE)
        if number is None:
            return None
        data_type = self._registry.data_type(device, tag)
        if data_type == BOOLEAN:
            return bool(number)
        if data_type in INTEGER_TYPES and float(number).is_integer():
            return int(number)
        return float(number)

    def latest(self, device: str) -> list[LatestValue]:
        tables = self._query(latest_flux(self.settings.bucket, device))
        newest: dict[str, tuple[int, dict[str, Any]]] = {}
        by_time: dict[tuple[str, int], dict[str, Any]] = {}
        for table in tables:
            for rec in table.records:
                tag, ts = str(rec.values["tag"]), from_datetime(rec.get_time())
                by_time.setdefault((tag, ts), {})[str(rec.get_field())] = rec.get_value()
                if ts > newest.get(tag, (-1, {}))[0]:
                    newest[tag] = (ts, by_time[(tag, ts)])
        units = self._registry.units(device)
        out = []
        for tag in sorted(newest):
            ts, row = newest[tag]
            status = row.get(FIELD_STATUS)
            out.append(LatestValue(tag, ts, self._typed(device, tag, row), int(status or 0), units.get(tag)))
        return out

    def series(self, device: str, tag: str, start: int, end: int, limit: int) -> list[Point]:
        span = clamp_range(start, end)
        if span is None or limit <= 0:
            return []
        tables = self._query(series_flux(self.settings.bucket, device, tag, span[0], span[1], limit))
        points = [
            Point(
                from_datetime(rec.get_time()),
                self._typed(device, tag, rec.values),
                int(rec.values[FIELD_STATUS]),
            )
            for table in tables
            for rec in table.records
        ]
        points.sort(key=lambda p: p.ts)
        return points[:limit]

    def buckets(self, device: str, tag: str, start: int, end: int, every: int, agg: Agg) -> list[Bucket]:
        if agg not in AGGREGATES:
            raise ValueError(f"unknown aggregate {agg!r}; use one of {', '.join(AGGREGATES)}")
        if every <= 0:
            raise ValueError("bucket width `every` must be a positive number of microseconds")
        span = clamp_range(start, end)
        if span is None:
            return []
        flux = buckets_flux(self.settings.bucket, device, tag, span[0], span[1], every, agg)
        counts: dict[int, int] = {}
        values: dict[int, Value] = {}
        for table in self._query(flux):
            for rec in table.records:
                # InfluxDB clips the first window's start to the range start: align it again.
                b = from_datetime(rec.get_time()) // every * every
                if rec.values.get("result") == "count":
                    counts[b] = counts.get(b, 0) + int(rec.get_value())
                elif agg in ("first", "last"):
                    values[b] = self._typed(device, tag, rec.values)
                else:
                    v = rec.get_value()
                    if agg == "avg":
                        values[b] = None if v is None else float(v)
                    else:  # min and max select a point: type it like one
                        values[b] = self._typed(device, tag, {FIELD_VALUE: v})
        out = []
        for b in sorted(counts):
            value: Value = counts[b] if agg == "count" else values.get(b)
            out.append(Bucket(b, value, counts[b]))
        return out
