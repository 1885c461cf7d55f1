"""InfluxStore against a recorded-contract server: a real local HTTP server playing InfluxDB 2's API.

No InfluxDB runs here, so this server answers /ping, /api/v2/buckets, /api/v2/write and /api/v2/query
the way InfluxDB 2 does (status codes, JSON error bodies, annotated CSV) and records what the adapter
sent. The tests pin the exact line protocol and Flux for known inputs, the parsing of InfluxDB's
answers, the one-line start-up errors, and that an outage while running loses no point.
The store's methods block, so tests call them through `asyncio.to_thread` while the server runs here.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from plantwire.broker import free_port
from plantwire.config import ConfigError
from plantwire.wire import DataBatch, DeviceMeta, Sample, TagInfo
from plantwire_platform.store.influx.store import InfluxSettings, InfluxStore
from plantwire_platform.store.model import (
    AuditEntry,
    Bucket,
    IncomingBatch,
    LatestValue,
    Point,
    StoreError,
    WriteResult,
)

T0 = 1_700_000_000_000_000
S = 1_000_000
TOKEN = "s3cret-token"
ORG = "acme"
BUCKET = "plant"
TIMEOUT = 20


@dataclass
class RecordedInflux:
    """An InfluxDB 2 stand-in on 127.0.0.1 that records requests and replays canned query answers."""

    port: int
    writes: list[dict[str, str]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _denied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Token {TOKEN}":
            return web.json_response({"code": "unauthorized", "message": "unauthorized access"}, status=401)
        return None

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"X-Influxdb-Version": "v2.7.10"})

    async def buckets(self, request: web.Request) -> web.Response:
        if denied := self._denied(request):
            return denied
        if request.query.get("org") != ORG:
            message = f'organization name "{request.query.get("org")}" not found'
            return web.json_response({"code": "not found", "message": message}, status=404)
        names = [BUCKET] if request.query.get("name") in (None, BUCKET) else []
        found = [
            {"id": "0123456789abcdef", "orgID": "fedcba9876543210", "name": n, "retentionRules": []}
            for n in names
        ]
        return web.json_response({"buckets": found})

    async def write(self, request: web.Request) -> web.Response:
        if denied := self._denied(request):
            return denied
        if request.query.get("bucket") != BUCKET:
            message = f'bucket "{request.query.get("bucket")}" not found'
            return web.json_response({"code": "not found", "message": message}, status=404)
        self.writes.append({**request.query, "body": (await request.read()).decode()})
        return web.Response(status=204)

    async def query(self, request: web.Request) -> web.Response:
        if denied := self._denied(request):
            return denied
        body = await request.json()
        self.queries.append(body["query"])
        csv = self.answers.pop(0) if self.answers else ""
        return web.Response(body=csv.encode(), content_type="text/csv")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ping", self.ping)
        app.router.add_get("/health", self.ping)
        app.router.add_get("/api/v2/buckets", self.buckets)
        app.router.add_post("/api/v2/write", self.write)
        app.router.add_post("/api/v2/query", self.query)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        runner, self.runner = self.runner, None
        if runner is not None:
            await runner.cleanup()

    def lines(self) -> list[str]:
        return [ln for w in self.writes for ln in w["body"].split("\n")]


def annotated_csv(columns: list[tuple[str, str]], rows: list[list[str]], result: str = "_result") -> str:
    """One table of InfluxDB's annotated CSV (the shape /api/v2/query answers with)."""
    names = ["result", "table", *(c for c, _ in columns)]
    types = ["string", "long", *(t for _, t in columns)]
    head = [
        "#datatype," + ",".join(types),
        "#group," + ",".join(["false"] * len(names)),
        f"#default,{result}," + "," * (len(columns)),
        "," + ",".join(names),
    ]
    body = [",,0," + ",".join(row) for row in rows]
    return "\r\n".join(head + body) + "\r\n\r\n"


def iso(us: int) -> str:
    from datetime import UTC, datetime, timedelta

    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
async def influx() -> AsyncIterator[RecordedInflux]:
    server = RecordedInflux(port=free_port())
    await server.start()
    yield server
    await server.stop()


def settings_for(server: RecordedInflux, tmp_path: Path, **changes: object) -> InfluxSettings:
    values: dict[str, object] = {
        "url": server.url,
        "token": TOKEN,
        "org": ORG,
        "bucket": BUCKET,
        "registry_path": tmp_path / "registry.sqlite",
        "startup_timeout_s": 2,
        "request_timeout_s": 2,
        "write_timeout_s": 10,
    }
    return InfluxSettings.model_validate(values | changes)


@pytest.fixture
async def store(influx: RecordedInflux, tmp_path: Path) -> AsyncIterator[InfluxStore]:
    async with asyncio.timeout(TIMEOUT):
        s = await asyncio.to_thread(InfluxStore.open, settings_for(influx, tmp_path))
    yield s
    await asyncio.to_thread(s.close)


def batch(seq: int, *samples: Sample, device: str = "press-1") -> IncomingBatch:
    return IncomingBatch("line-1", device, DataBatch(seq=seq, sent=T0, samples=list(samples)))


# --- what the adapter sends --------------------------------------------------------------------------


async def test_points_become_exact_line_protocol(influx: RecordedInflux, store: InfluxStore) -> None:
    samples = [
        Sample("Spindle/Speed", T0, 1234.5),
        Sample("count", T0 + 1, 42),
        Sample("on", T0 + 2, True),
        Sample("mode", T0 + 3, 'say "hi" \\ bye'),
        Sample("lost", T0 + 4, None, 0x80310000),
        Sample("a tag,with=odd chars", T0 + 5, -0.25),
        Sample("vec", T0 + 6, [57.0, 114.0]),  # arrays and structures: their JSON text
        Sample("range", T0 + 7, {"Low": 1.5}),
    ]
    async with asyncio.timeout(TIMEOUT):
        result = await asyncio.to_thread(store.write_batches, [batch(1, *samples)])
    assert result == WriteResult(stored=8, duplicates=0, seq_gaps=0)
    (write,) = influx.writes
    assert (write["org"], write["bucket"], write["precision"]) == (ORG, BUCKET, "us")
    key = "plantwire,device=press-1,gateway=line-1,tag="
    assert write["body"].split("\n") == [
        f"{key}Spindle/Speed status=0i,value=1234.5 {T0}",
        f"{key}count status=0i,value=42.0 {T0 + 1}",
        f"{key}on status=0i,value=1,value_bool=true {T0 + 2}",
        f'{key}mode status=0i,value_str="say \\"hi\\" \\\\ bye" {T0 + 3}',
        f"{key}lost status=2150694912i {T0 + 4}",
        f"{key}a\\ tag\\,with\\=odd\\ chars status=0i,value=-0.25 {T0 + 5}",
        f'{key}vec status=0i,value_str="[57.0,114.0]" {T0 + 6}',
        f'{key}range status=0i,value_str="{{\\"Low\\":1.5}}" {T0 + 7}',
    ]


async def test_redelivery_is_sent_again_but_counted_as_duplicate(
    influx: RecordedInflux, store: InfluxStore
) -> None:
    one = batch(1, Sample("p", T0, 1.0), Sample("p", T0 + S, 2.0))
    async with asyncio.timeout(TIMEOUT):
        first = await asyncio.to_thread(store.write_batches, [one])
        again = await asyncio.to_thread(store.write_batches, [one, batch(4, Sample("p", T0 + 2 * S, 3.0))])
        count = await asyncio.to_thread(store.count_points)
    assert (first.stored, again) == (2, WriteResult(stored=1, duplicates=2, seq_gaps=2))
    assert count == 3
    # InfluxDB overwrites a point with itself: re-sending is what makes the write idempotent.
    assert len(influx.lines()) == 5


async def test_series_sends_flux_and_reads_annotated_csv(influx: RecordedInflux, store: InfluxStore) -> None:
    columns = [
        ("_time", "dateTime:RFC3339"),
        ("status", "long"),
        ("value", "double"),
        ("value_str", "string"),
    ]
    influx.answers.append(
        annotated_csv(
            columns,
            [[iso(T0 + 1), "0", "1.5", ""], [iso(T0 + 2), "0", "", "idle"], [iso(T0 + 3), "5", "", ""]],
        )
    )
    async with asyncio.timeout(TIMEOUT):
        points = await asyncio.to_thread(store.series, "press-1", 'we"ird ${x}', T0, T0 + 10 * S, 100)
    assert points == [Point(T0 + 1, 1.5, 0), Point(T0 + 2, "idle", 0), Point(T0 + 3, None, 5)]
    assert influx.queries == [
        'from(bucket: "plant")\n'
        f"  |> range(start: time(v: {T0 * 1000}), stop: time(v: {(T0 + 10 * S) * 1000}))\n"
        '  |> filter(fn: (r) => r._measurement == "plantwire" and r.device == "press-1"'
        ' and r.tag == "we\\"ird \\${x}")\n'
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        "  |> group()\n"
        '  |> sort(columns: ["_time"])\n'
        "  |> limit(n: 100)\n"
        '  |> keep(columns: ["_time", "value", "value_bool", "value_str", "status"])'
    ]


async def test_buckets_send_two_results_and_realign_the_clipped_first_window(
    influx: RecordedInflux, store: InfluxStore
) -> None:
    cols = [("_time", "dateTime:RFC3339"), ("_value", "long")]
    # InfluxDB reports the first window starting at the range start (T0 + 5 s), not at T0.
    counts = annotated_csv(cols, [[iso(T0 + 5 * S), "2"], [iso(T0 + 30 * S), "1"]], result="count")
    avgs = annotated_csv(
        [("_time", "dateTime:RFC3339"), ("_value", "double")],
        [[iso(T0 + 5 * S), "4"], [iso(T0 + 30 * S), "10"]],
        result="agg",
    )
    influx.answers.append(counts + avgs)
    async with asyncio.timeout(TIMEOUT):
        got = await asyncio.to_thread(store.buckets, "press-1", "p", T0 + 5 * S, T0 + 60 * S, 10 * S, "avg")
    assert got == [Bucket(T0, 4.0, 2), Bucket(T0 + 30 * S, 10.0, 1)]
    (flux,) = influx.queries
    assert flux.startswith('data = from(bucket: "plant")\n')
    assert '  |> group(columns: ["_field"])\ndata\n  |> filter(fn: (r) => r._field == "status")' in flux
    window = 'every: 10000000us, createEmpty: false, timeSrc: "_start"'
    assert f"  |> aggregateWindow({window}, fn: count)\n" in flux
    assert f'  |> aggregateWindow({window}, fn: mean)\n  |> keep(columns: ["_time", "_value"])' in flux
    assert flux.endswith('|> yield(name: "agg")')


async def test_first_asks_flux_for_each_windows_first_row_with_its_typed_fields(
    influx: RecordedInflux, store: InfluxStore
) -> None:
    counts = annotated_csv(
        [("_time", "dateTime:RFC3339"), ("_value", "long")], [[iso(T0 + 5 * S), "2"]], result="count"
    )
    firsts = annotated_csv(
        [("_time", "dateTime:RFC3339"), ("value", "double"), ("value_str", "string")],
        [[iso(T0 + 5 * S), "", "auto"]],
        result="agg",
    )
    influx.answers.append(counts + firsts)
    async with asyncio.timeout(TIMEOUT):
        got = await asyncio.to_thread(store.buckets, "press-1", "m", T0 + 5 * S, T0 + 60 * S, 10 * S, "first")
    assert got == [Bucket(T0, "auto", 2)]
    (flux,) = influx.queries
    window = 'every: 10000000us, createEmpty: false, timeSrc: "_start"'
    assert '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")' in flux
    assert f'  |> aggregateWindow({window}, fn: first, column: "status")\n' in flux


async def test_latest_keeps_the_newest_point_per_tag(
    influx: RecordedInflux, store: InfluxStore, tmp_path: Path
) -> None:
    meta = DeviceMeta("opc.tcp://press:4840", "", [TagInfo("count", "ns=2;s=c", "Int32", unit="pcs")])
    columns = [("_time", "dateTime:RFC3339"), ("_value", "double"), ("_field", "string"), ("tag", "string")]
    rows = [
        [iso(T0 + 1), "7", "value", "count"],
        [iso(T0 + 1), "", "status", "count"],
        # 'lost' had a value at T0 but its newest point (T0 + 9) has only a status: no value.
        [iso(T0), "3.5", "value", "lost"],
    ]
    status_rows = [[iso(T0 + 1), "0", "status", "count"], [iso(T0 + 9), "2150694912", "status", "lost"]]
    long_cols = [(n, "long" if n == "_value" else t) for n, t in columns]
    influx.answers.append(annotated_csv(columns, rows[:1] + rows[2:]) + annotated_csv(long_cols, status_rows))
    async with asyncio.timeout(TIMEOUT):
        await asyncio.to_thread(store.apply_meta, "line-1", "press-1", meta)
        latest = await asyncio.to_thread(store.latest, "press-1")
    assert latest == [
        LatestValue("count", T0 + 1, 7, 0, "pcs"),
        LatestValue("lost", T0 + 9, None, 0x80310000, None),
    ]
    assert type(latest[0].value) is int  # an Int32 tag reads back as an integer
    assert "  |> last()\n" in influx.queries[0]


# --- start-up checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"token": "wrong"}, "rejected the token (401 unauthorized"),
        ({"bucket": "nope"}, "has no bucket 'nope' in organisation 'acme'"),
        ({"org": "other"}, 'organization name "other" not found'),
        ({"token": None}, "no InfluxDB token: set PLANTWIRE_STORE__INFLUXDB__TOKEN"),
    ],
)
async def test_bad_credentials_stop_start_up_with_one_line(
    influx: RecordedInflux, tmp_path: Path, changes: dict[str, object], expected: str
) -> None:
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(ConfigError) as err:
            await asyncio.to_thread(InfluxStore.open, settings_for(influx, tmp_path, **changes))
    message = str(err.value)
    assert expected in message
    assert "\n" not in message and TOKEN not in message


async def test_unreachable_influx_stops_start_up_after_the_timeout(tmp_path: Path) -> None:
    dead = RecordedInflux(port=free_port())
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(ConfigError, match=r"cannot reach InfluxDB at .* \(gave up after 0.3 s\)"):
            await asyncio.to_thread(InfluxStore.open, settings_for(dead, tmp_path, startup_timeout_s=0.3))


# --- outages while running ---------------------------------------------------------------------------


async def _wait_for(condition: Callable[[], bool]) -> None:
    """Poll a condition set by another thread (the store's loop), under the caller's timeout."""
    while True:
        if condition():
            return
        await asyncio.sleep(0.02)


async def test_outage_while_running_retries_until_influx_is_back(
    influx: RecordedInflux, store: InfluxStore
) -> None:
    samples = [Sample("p", T0 + i, float(i)) for i in range(50)]
    async with asyncio.timeout(TIMEOUT):
        await influx.stop()
        done = threading.Event()
        results: list[WriteResult] = []

        def write() -> None:
            results.append(store.write_batches([batch(1, *samples)]))
            done.set()

        writer = asyncio.create_task(asyncio.to_thread(write))
        await _wait_for(lambda: store.write_attempts_failed >= 2)
        assert not done.is_set()  # the write waits: nothing is acknowledged while InfluxDB is away
        await influx.start()
        await writer
    assert results == [WriteResult(stored=50, duplicates=0, seq_gaps=0)]
    assert sorted(int(ln.rsplit(" ", 1)[1]) for ln in influx.lines()) == [T0 + i for i in range(50)]


async def test_write_gives_up_after_its_deadline_and_the_retry_loses_nothing(
    influx: RecordedInflux, tmp_path: Path
) -> None:
    async with asyncio.timeout(TIMEOUT):
        store = await asyncio.to_thread(
            InfluxStore.open, settings_for(influx, tmp_path, write_timeout_s=0.5, request_timeout_s=0.5)
        )
        try:
            await influx.stop()
            one = [batch(1, Sample("p", T0, 1.0), Sample("p", T0 + 1, 2.0))]
            with pytest.raises(StoreError, match="write to InfluxDB failed: cannot reach InfluxDB at"):
                await asyncio.to_thread(store.write_batches, one)
            assert await asyncio.to_thread(store.count_points) == 0
            await influx.start()
            # The ingest retries the same messages after an error: they are stored, counted once.
            assert await asyncio.to_thread(store.write_batches, one) == WriteResult(2, 0, 0)
            assert await asyncio.to_thread(store.count_points) == 2
            assert len(influx.lines()) == 2
        finally:
            await asyncio.to_thread(store.close)


async def test_write_errors_name_the_problem(influx: RecordedInflux, store: InfluxStore) -> None:
    influx_bucket_gone = settings_for(influx, Path("unused"), bucket="gone")
    store.settings = influx_bucket_gone  # as if the bucket had been deleted under a running platform
    store.settings = store.settings.model_copy(update={"write_timeout_s": 0.3})
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(StoreError, match=r"not found \(404: bucket \"gone\" not found\)"):
            await asyncio.to_thread(store.write_batches, [batch(1, Sample("p", T0, 1.0))])


async def test_ownership_seq_jumps_and_audit_retention_live_in_the_registry_file(
    store: InfluxStore, tmp_path: Path
) -> None:
    """The InfluxDB backend keeps ownership and the audit in its local SQLite registry file; seq
    jumps follow the same rule as the other backends (store/seq_tracking.py)."""

    def run() -> None:
        assert store.claim_device("gw", "press-1") == "gw"
        assert store.claim_device("forger", "press-1") == "gw"
        assert store.move_device("press-1", "gw2") == "gw"
        assert store.device_owner("press-1") == "gw2"
        store.write_batches([batch(1, Sample("p", T0, 1.0))])
        jumped = store.write_batches([batch(2**63 - 1, Sample("p", T0 + S, 1.0))])
        assert (jumped.seq_gaps, jumped.seq_jumps) == (0, 1)
        assert store.write_batches([batch(2, Sample("p", T0 + 2 * S, 1.0))]).seq_gaps == 0
        for i in range(3):
            store.add_audit(
                AuditEntry(0, T0 + i, "u", "write", None, "press-1", None, {}, "ok", 200, 0, None, None)
            )
        assert store.prune_audit(keep_rows=1, before_ts=0) == 2

    async with asyncio.timeout(TIMEOUT):
        await asyncio.to_thread(run)


async def test_changed_devices_follow_the_registry_file(store: InfluxStore) -> None:
    """The contract's device-change test on this backend (its registry file keeps `changed`)."""
    from test_store_contract import test_changed_devices_follow_creations_and_moves_only_in_pages as check

    async with asyncio.timeout(TIMEOUT):
        await asyncio.to_thread(check, store, "press-changes")
