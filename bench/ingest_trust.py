"""What ingest's trust checks cost per data message, on the writer thread: the owner check (a
cache hit after the first message of a device), the time window over the samples, and the `seq`
rule, against the store commit they sit beside. Real SQLite file, no MQTT (these run after decode).

    python bench/ingest_trust.py --messages 20000 --samples 50 --devices 100
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from plantwire import wire
from plantwire_platform.ingest.ownership import DeviceOwners
from plantwire_platform.ingest.sample_window import in_window
from plantwire_platform.store.model import IncomingBatch
from plantwire_platform.store.seq_tracking import DEFAULT_MAX_SEQ_JUMP, advance
from plantwire_platform.store.sqlite import SqliteStore


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    now = wire.now_us()
    batches = [
        IncomingBatch(
            "gw1",
            f"dev-{i % args.devices}",
            wire.DataBatch(
                i // args.devices + 1,
                now,
                [wire.Sample(f"t{k}", now - i * 1000 - k, float(k)) for k in range(args.samples)],
            ),
        )
        for i in range(args.messages)
    ]
    with tempfile.TemporaryDirectory() as tmp, SqliteStore.open(Path(tmp) / "bench.sqlite") as store:
        owners = DeviceOwners(store)
        checks, commits = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            last: dict[str, int] = {}
            for b in batches:
                owners.allows(b.gateway, b.device)
                in_window(b.batch, now, 300_000_000)
                advance(last.get(b.device, 0), b.batch.seq, DEFAULT_MAX_SEQ_JUMP)
                last[b.device] = b.batch.seq
            checks.append((time.perf_counter() - started) / len(batches))
        started = time.perf_counter()
        for i in range(0, len(batches), 100):
            store.write_batches(batches[i : i + 100])
        commits.append((time.perf_counter() - started) / len(batches))
    check_us, commit_us = statistics.median(checks) * 1e6, statistics.median(commits) * 1e6
    print(f"{args.messages} messages of {args.samples} values, {args.devices} devices")
    print(f"trust checks: {check_us:.2f} us per message ({check_us / args.samples * 1000:.0f} ns per value)")
    print(f"store commit: {commit_us:.1f} us per message (100 messages per commit)")
    print(f"checks / commit: {check_us / commit_us * 100:.1f} %")


if __name__ == "__main__":
    main()
