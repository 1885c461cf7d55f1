"""Broker outage benchmark: a steady stream, the broker stopped for a while, then back.

Runs the plant as processes (simulators -> gateway -> Mosquitto -> platform, the same harness as the
chaos tests: tests/integration/chaos_plant.py), stops Mosquitto for --outage seconds, starts it again
and prints: values lost and duplicated (from the simulators' records against the store), the time from
the broker accepting connections to the first new value stored, and the catch-up rate while the
gateway's outbox drains.

    python bench/outage.py --sims 4 --tags 250 --rate 10 --outage 30
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from chaos_plant import Plant, Sim, compare, read_records, wait_until

from plantwire import wire
from plantwire.broker import MosquittoProcess, free_port


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sims", type=int, default=4, help="simulator processes, one machine each")
    ap.add_argument("--tags", type=int, default=250, help="extra tags per machine (meter has 6 more)")
    ap.add_argument("--rate", type=float, default=10.0, help="updates per second of every tag")
    ap.add_argument("--outage", type=float, default=30.0, help="seconds the broker is down")
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--publishing-ms", type=int, default=200)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="plantwire-outage-"))
    broker = MosquittoProcess(port=free_port(), data_dir=work / "mosquitto")
    broker.start()
    sims = [
        Sim(f"m{i + 1}", free_port(), work, tags=args.tags, rate=args.rate, seed=i + 1)
        for i in range(args.sims)
    ]
    plant = Plant(work, broker, sims, "bench", publishing_ms=args.publishing_ms)
    gw_metrics = f"http://127.0.0.1:{plant.gateway_health_port}/metrics"
    try:
        plant.start()
        wait_until(lambda: plant.point_count() > 0, 60, "first data stored")
        time.sleep(args.warmup)
        n0, t0 = plant.point_count(), time.monotonic()
        time.sleep(5)
        steady = (plant.point_count() - n0) / (time.monotonic() - t0)

        broker.stop()
        down_at = time.monotonic()
        time.sleep(args.outage)
        backlog = plant.metrics(gw_metrics)["plantwire_gateway_outbox_rows"]
        n_before = plant.point_count()
        broker.start()
        back = time.monotonic()
        resume = wait_until(lambda: plant.point_count() > n_before, 120, "first value after the outage", 0.01)
        first_new = time.monotonic()
        # Caught up: the outbox drained and the newest stored value is live again (FIFO all the way,
        # so the whole backlog was committed before it).
        wait_until(
            lambda: (
                plant.metrics(gw_metrics)["plantwire_gateway_outbox_rows"] < 50
                and plant.newest_ts() > wire.now_us() - 1_500_000
            ),
            600,
            "caught up",
            0.1,
        )
        caught_up = time.monotonic()
        n_after = plant.point_count()
        catch_up_rate = (n_after - n_before) / max(caught_up - first_new, 1e-3)

        time.sleep(3)
        cutoff = wire.now_us() - 1_000_000
        for s in sims:
            s.stop()
        produced = read_records(r for s in sims for r in s.records)

        def verdict():  # type: ignore[no-untyped-def]
            return compare(produced, plant.stored(), end_ts=cutoff)

        try:
            wait_until(lambda: not verdict().lost, 120, "all values stored", 1.0)
        except TimeoutError:
            pass
        result = verdict()
        platform = plant.metrics(f"{plant.url}/metrics")
        gateway = plant.metrics(gw_metrics)

        print(f"sims={args.sims} tags/machine={args.tags}+6 rate={args.rate}Hz outage={args.outage:.0f}s")
        print(f"steady rate      {steady:,.0f} values/s stored before the outage")
        print(f"outbox backlog   {backlog:,.0f} messages when the broker came back "
              f"(down {back - down_at:.1f} s)")  # fmt: skip
        print(f"time to resume   {resume:.2f} s from the broker accepting connections to a new value stored")
        print(f"catch-up         {caught_up - first_new:.1f} s from the first new value to live again; "
              f"{n_after - n_before:,} values stored, {catch_up_rate:,.0f}/s (live too)")  # fmt: skip
        print(f"produced         {result.expected:,} values checked; lost {len(result.lost)}; "
              f"invented {len(result.invented)}")  # fmt: skip
        print(f"duplicated       0 in the store by its key; redelivered and ignored "
              f"{platform['plantwire_platform_duplicate_points_total']:,.0f}")  # fmt: skip
        print(f"seq gaps         {platform['plantwire_platform_seq_gaps_total']:.0f}; outbox dropped "
              f"{gateway['plantwire_gateway_outbox_dropped_total']:.0f}")  # fmt: skip
        print(f"work dir: {work}")
    finally:
        plant.stop()
        broker.stop()


if __name__ == "__main__":
    main()
