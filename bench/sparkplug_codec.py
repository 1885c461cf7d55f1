"""Cost per value of a 50-metric Sparkplug B DDATA vs Plantwire's JSON data batch. Prints figures.

    .venv/bin/python bench/sparkplug_codec.py [--rounds 2000]

Same 50 values both ways, each with its own timestamp: 40 Doubles, 5 Int32s (some negative),
5 Booleans. Sparkplug: `EdgeNode.update` (change detection, aliases, protobuf encode) and the
host's decode (alias lookup, datatype masking) of the same bytes. JSON: `wire.encode_data` and
`wire.decode_data` (orjson plus validation). Bytes per value is the MQTT payload divided by 50.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from plantwire import wire
from plantwire.sparkplug.edge import EdgeNode, MetricSpec, Sample
from plantwire.sparkplug.payload import DataType, decode_payload

N = 50
T0 = 1_700_000_000_000


def kinds() -> list[DataType]:
    return [DataType.Double] * 40 + [DataType.Int32] * 5 + [DataType.Boolean] * 5


def value(kind: DataType, i: int, step: int) -> float | int | bool:
    if kind is DataType.Double:
        return 20.0 + i * 0.37 + step * 0.001
    if kind is DataType.Int32:
        return (step + i) * (-1 if i % 2 else 1)
    return (step + i) % 2 == 0


def best_of(fn: Callable[[int], object], rounds: int) -> float:
    """Seconds per call, the best of 5 runs of `rounds` calls."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for step in range(rounds):
            fn(step)
        best = min(best, (time.perf_counter() - start) / rounds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    types = kinds()
    names = [f"tag{i:02d}" for i in range(N)]

    node = EdgeNode("plantwire", "gw1", clock=lambda: T0)
    node.will()
    node.add_device("press", [MetricSpec(n, t) for n, t in zip(names, types, strict=True)])
    node.on_connected()
    by_alias = {i + 1: t for i, t in enumerate(types)}

    def sp_encode(step: int) -> bytes:
        samples = [
            Sample(n, value(t, i, step + 1), T0 + step)
            for i, (n, t) in enumerate(zip(names, types, strict=True))
        ]
        return node.update("press", samples)[0].payload

    def json_batch(step: int) -> wire.DataBatch:
        samples = [
            wire.Sample(n, (T0 + step) * 1000, value(t, i, step + 1))
            for i, (n, t) in enumerate(zip(names, types, strict=True))
        ]
        return wire.DataBatch(step + 1, (T0 + step) * 1000, samples)

    sp_bytes = sp_encode(10_000_000)
    js_bytes = wire.encode_data(json_batch(10_000_000))
    batch = json_batch(1)

    sp_enc = best_of(sp_encode, args.rounds)
    sp_dec = best_of(lambda _: decode_payload(sp_bytes, lambda a, n: by_alias.get(a or 0)), args.rounds)
    build = best_of(json_batch, args.rounds)  # building the Sample objects, outside the encoder
    js_enc = best_of(lambda _: wire.encode_data(batch), args.rounds)
    js_dec = best_of(lambda _: wire.decode_data(js_bytes), args.rounds)

    print(f"{N} values per message (40 Double, 5 Int32, 5 Boolean), best of 5 x {args.rounds} messages")
    print(f"{'':34}{'µs/value':>10}{'bytes/value':>13}")
    print(f"{'Sparkplug DDATA encode (EdgeNode)':34}{sp_enc / N * 1e6:>10.2f}{len(sp_bytes) / N:>13.1f}")
    print(f"{'Sparkplug DDATA decode':34}{sp_dec / N * 1e6:>10.2f}")
    print(f"{'JSON wire encode_data (orjson)':34}{js_enc / N * 1e6:>10.2f}{len(js_bytes) / N:>13.1f}")
    print(f"{'JSON wire decode_data':34}{js_dec / N * 1e6:>10.2f}")
    print(f"{'(JSON: building wire.Sample objs)':34}{build / N * 1e6:>10.2f}")
    print("Sparkplug encode includes building its Sample objects and change detection.")


if __name__ == "__main__":
    main()
