"""Cost per value of a 50-metric Sparkplug B DDATA vs Plantwire's JSON data batch. Prints figures.

    .venv/bin/python bench/sparkplug_codec.py [--rounds 2000]

Same 50 values both ways, each with its own timestamp: 40 Doubles, 5 Int32s (some negative),
5 Booleans; every value changes every message (report by exception sends all 50). Both sides start
from what the gateway holds and end where the platform's store takes over:

gateway   JSON: build the `wire.Sample`s, `wire.encode_data` (the outbox row, which the JSON link
          publishes as it is). Sparkplug, instead of `encode_data`: `EdgeNode.encode_samples` (the
          outbox row: change detection, aliases, the metrics' protobuf bytes), and when the row is
          published `EdgeNode.ddata_of_row` (the DDATA's timestamp and seq around those bytes).
          For reference: the path before (the JSON row turned into a DDATA when published: orjson,
          `EdgeNode.update_wire`) and `EdgeNode.update` from `Sample` objects (its general API).
platform  JSON: `wire.decode_data` (orjson plus validation) -> `wire.Sample`s, as `mqtt_ingest`.
          Sparkplug: `HostApplication.on_message` (seq check, alias lookup, datatype masking) and
          `SparkplugIngest`'s records -> `wire.Sample`s of an `IncomingBatch`, as on its paho thread.
Bytes per value is the MQTT payload divided by 50.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import orjson

from plantwire import wire
from plantwire.sparkplug.edge import EdgeNode, MetricSpec, Sample
from plantwire.sparkplug.host import HostApplication
from plantwire.sparkplug.payload import DataType, decode_payload
from plantwire_platform.ingest.sparkplug_ingest import SparkplugIngest
from plantwire_platform.settings import PlatformSettings

N = 50
T0 = 1_700_000_000_000
TOPIC = "spBv1.0/plantwire/DDATA/gw1/press"


def kinds() -> list[DataType]:
    return [DataType.Double] * 40 + [DataType.Int32] * 5 + [DataType.Boolean] * 5


def value(kind: DataType, i: int, step: int) -> float | int | bool:
    if kind is DataType.Double:
        return 20.0 + i * 0.37 + step * 0.001
    if kind is DataType.Int32:
        return (step + i) * (-1 if i % 2 else 1)
    return (step + i) % 2 == 0


def best_of(fn: Callable[[int], object], rounds: int) -> float:
    """CPU seconds of this process per call, the best of 5 runs of `rounds` calls (CPU time, not
    wall-clock: the figures hold on a machine busy with other work)."""
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for step in range(rounds):
            fn(step)
        best = min(best, (time.process_time() - start) / rounds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    types = kinds()
    names = [f"tag{i:02d}" for i in range(N)]
    specs = [MetricSpec(n, t) for n, t in zip(names, types, strict=True)]

    def node() -> tuple[EdgeNode, list[bytes]]:
        edge = EdgeNode("plantwire", "gw1", clock=lambda: T0)
        edge.will()
        edge.add_device("press", specs)
        return edge, [o.payload for o in edge.on_connected()]

    def samples(step: int) -> list[wire.Sample]:
        return [
            wire.Sample(n, (T0 + step) * 1000, value(t, i, step + 1))
            for i, (n, t) in enumerate(zip(names, types, strict=True))
        ]

    def json_row(step: int) -> bytes:
        return wire.encode_data(wire.DataBatch(step + 1, (T0 + step) * 1000, samples(step)))

    rows = [json_row(step) for step in range(256)]
    spb_link, _ = node()

    spb_store, _ = node()
    sp_batches = [samples(step) for step in range(256)]

    def sp_store(step: int) -> bytes:  # SparkplugLink.store's work on a batch (instead of encode_data)
        return spb_store.encode_samples("press", sp_batches[step % 256]).data

    sp_rows = [sp_store(step) for step in range(256)]

    def sp_publish(step: int) -> bytes:  # SparkplugLink._publish_row's work on such a row
        return spb_store.ddata_of_row("press", sp_rows[step % 256], 0)[0].payload

    def sp_link(step: int) -> bytes:  # the path before: the JSON row as a DDATA when published
        obj = orjson.loads(rows[step % 256])
        return spb_link.update_wire("press", obj["values"], obj["sent"] < 0)[0].payload

    spb_api, _ = node()

    def sp_api(step: int) -> bytes:
        sp_samples = [
            Sample(n, value(t, i, step + 1), T0 + step)
            for i, (n, t) in enumerate(zip(names, types, strict=True))
        ]
        return spb_api.update("press", sp_samples)[0].payload

    # The platform side: a host that saw the births, fed consecutive DDATAs (seq wraps at 256).
    feeder, births = node()
    ddata = [feeder.update_wire("press", orjson.loads(rows[s])["values"])[0].payload for s in range(256)]
    ingest = SparkplugIngest(PlatformSettings(), store=None)  # type: ignore[arg-type]  # no writes here
    host: HostApplication = ingest.host
    for topic, payload in zip(("NBIRTH/gw1", "DBIRTH/gw1/press"), births, strict=True):
        host.on_message(f"spBv1.0/plantwire/{topic}", payload)
    fed = [0]  # NBIRTH took seq 0, DBIRTH 1: ddata[0] is seq 2, fed in order however often called

    def sp_host(_: int) -> object:
        result = host.on_message(TOPIC, ddata[fed[0] % 256])
        fed[0] += 1
        out = ingest._outcome(result)
        assert len(out.batches[0].batch.samples) == N
        return out

    by_alias = {i + 1: t for i, t in enumerate(types)}
    batch_samples = samples(1)
    js_bytes = rows[0]
    sp_bytes = ddata[0]

    gw_json_build = best_of(samples, args.rounds)
    gw_json_encode = best_of(lambda _: wire.encode_data(wire.DataBatch(1, T0, batch_samples)), args.rounds)
    gw_sp_store = best_of(sp_store, args.rounds)  # each batch changes every value: all encoded
    gw_sp_publish = best_of(sp_publish, args.rounds)
    gw_sp_link = best_of(sp_link, args.rounds)
    gw_sp_api = best_of(sp_api, args.rounds)
    pf_json = best_of(lambda _: wire.decode_data(js_bytes, compound="native"), args.rounds)
    pf_sp = best_of(sp_host, args.rounds)
    pf_sp_codec = best_of(lambda _: decode_payload(sp_bytes, lambda a, n: by_alias.get(a or 0)), args.rounds)
    assert host.counters.seq_gaps == 0, "the host saw a seq gap: the figures would be of refused messages"

    def us(seconds: float) -> str:
        return f"{seconds / N * 1e6:>9.2f}"

    print(f"{N} values per message (40 Double, 5 Int32, 5 Boolean), best of 5 x {args.rounds} messages "
          "(CPU time), "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    print(f"{'':58}{'µs/value':>9}{'bytes/value':>13}")
    print("gateway (from the samples it holds to the MQTT payload)")
    print(f"  {'JSON: build wire.Samples':56}{us(gw_json_build)}")
    print(f"  {'JSON: wire.encode_data (the outbox row, published as is)':56}{us(gw_json_encode)}"
          f"{len(js_bytes) / N:>13.1f}")  # fmt: skip
    print(f"  {'Sparkplug: EdgeNode.encode_samples (the outbox row)':56}{us(gw_sp_store)}")
    print(f"  {'Sparkplug: + EdgeNode.ddata_of_row (when published)':56}{us(gw_sp_publish)}"
          f"{len(sp_bytes) / N:>13.1f}")  # fmt: skip
    print(f"  {'(before: JSON row + orjson, update_wire when published)':56}{us(gw_sp_link)}")
    print(f"  {'(Sparkplug: EdgeNode.update, incl. building Samples)':56}{us(gw_sp_api)}")
    print("platform (from the MQTT payload to the wire.Samples the store takes)")
    print(f"  {'JSON: wire.decode_data':56}{us(pf_json)}")
    print(f"  {'Sparkplug: HostApplication.on_message + ingest records':56}{us(pf_sp)}")
    print(f"  {'(Sparkplug: decode_payload alone, Metric tuples)':56}{us(pf_sp_codec)}")


if __name__ == "__main__":
    main()
