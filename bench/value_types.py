"""Benchmark of arrays, structures and UInt64 in the SQLite store: ingest rate and aggregate cost.

    .venv/bin/python bench/value_types.py [--steps 2000] [--dir /tmp/pwbench]

Ingest as bench/store.py does (10 devices x 50 tags, messages interleaved across series, 20
messages per commit), once with Double scalars, once with Double[3] arrays, once with UInt64
values above 2^63 (decimal strings). Then a 1-minute `avg` over one series of each kind: scalars
aggregate in SQL, arrays and UInt64 in Python (store/value_shapes.py). Prints figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from plantwire.wire import DataBatch, DeviceMeta, JsonValue, Sample, TagInfo
from plantwire_platform.store.model import IncomingBatch
from plantwire_platform.store.sqlite import SqliteStore

T0 = 1_700_000_000_000_000
DEVICES = 10
TAGS = 50
PER_COMMIT = 20
MINUTE = 60_000_000
KINDS = (("scalar", "Double", None), ("array", "Double", (3,)), ("uint64", "UInt64", None))


def value_of(kind: str, step: int, tag: int) -> JsonValue:
    if kind == "array":
        return [float(step % 1000), tag * 0.5, -float(step % 7)]
    if kind == "uint64":
        return str(2**63 + step * 50 + tag)
    return float(step % 1000) + tag * 0.5


def messages(kind: str, steps: int) -> list[IncomingBatch]:
    out = []
    for step in range(steps):
        ts = T0 + step * 100_000
        for d in range(DEVICES):
            samples = [Sample(f"tag{t:02d}", ts, value_of(kind, step, t)) for t in range(TAGS)]
            out.append(IncomingBatch("gw", f"{kind}{d}", DataBatch(step + 1, ts, samples)))
    return out


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2000, help="time steps (each 500 points)")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="pw-value-types-"))
    store = SqliteStore.open(folder / "bench.sqlite")
    try:
        for kind, data_type, dims in (
            ("scalar", "Double", None),
            ("array", "Double", (3,)),
            ("uint64", "UInt64", None),
        ):
            tags = [TagInfo(f"tag{t:02d}", f"ns=2;s={t}", data_type, dims=dims) for t in range(TAGS)]
            for d in range(DEVICES):
                store.apply_meta("gw", f"{kind}{d}", DeviceMeta("opc.tcp://x:4840", "ns=2;s=x", tags))
            batches = messages(kind, args.steps)
            seconds = 0.0
            for i in range(0, len(batches), PER_COMMIT):
                chunk = batches[i : i + PER_COMMIT]
                seconds += timed(lambda chunk=chunk: store.write_batches(chunk))  # type: ignore[misc]
            points = len(batches) * TAGS
            end = T0 + args.steps * 100_000
            agg = timed(
                lambda kind=kind, end=end: store.buckets(f"{kind}0", "tag00", T0, end, 60_000_000, "avg")
            )  # type: ignore[misc]
            print(
                f"{kind:>6}: ingest {points / seconds:,.0f} points/s ({points:,} points); "
                f"1-minute avg over {args.steps:,} points of one series: {agg * 1000:.1f} ms"
            )
    finally:
        store.close()


if __name__ == "__main__":
    main()
