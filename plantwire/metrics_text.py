"""A tiny writer of the Prometheus text exposition format (version 0.0.4), shared by both services.

Why not prometheus_client: the figures already live in plain counters on each service's objects;
rendering them at scrape time is a few lines, needs no registry or global state, and no dependency.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import Final, Literal

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

MetricType = Literal["counter", "gauge", "histogram"]
Labels = Mapping[str, str]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels | None) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class MetricsText:
    """Collects metric families and renders them: one HELP and TYPE line per family, then samples."""

    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix
        self._lines: list[str] = []
        self._declared: set[str] = set()

    def _declare(self, name: str, kind: MetricType, help_text: str) -> str:
        full = self._prefix + name
        if full not in self._declared:
            self._declared.add(full)
            self._lines.append(f"# HELP {full} {_escape(help_text)}")
            self._lines.append(f"# TYPE {full} {kind}")
        return full

    def counter(self, name: str, help_text: str, value: float, labels: Labels | None = None) -> None:
        """A monotonically growing count; by convention `name` ends in `_total`."""
        full = self._declare(name, "counter", help_text)
        self._lines.append(f"{full}{_labels(labels)} {_number(value)}")

    def gauge(self, name: str, help_text: str, value: float | None, labels: Labels | None = None) -> None:
        """A value that goes up and down; None (not known yet) writes no sample."""
        full = self._declare(name, "gauge", help_text)
        if value is not None:
            self._lines.append(f"{full}{_labels(labels)} {_number(value)}")

    def labelled(
        self,
        kind: Literal["counter", "gauge"],
        name: str,
        help_text: str,
        label: str,
        values: Mapping[str, float],
    ) -> None:
        """One family with one sample per label value, e.g. decode errors by reason."""
        full = self._declare(name, kind, help_text)
        for key, value in values.items():
            self._lines.append(f"{full}{_labels({label: key})} {_number(value)}")

    def histogram(
        self,
        name: str,
        help_text: str,
        bounds: Iterable[float],
        counts: Iterable[int],
        total_sum: float,
        labels: Labels | None = None,
    ) -> None:
        """`counts` per bucket (not cumulative) with one more entry than `bounds` for the overflow."""
        full = self._declare(name, "histogram", help_text)
        running = 0
        bounds_list, counts_list = list(bounds), list(counts)
        if len(counts_list) != len(bounds_list) + 1:
            raise ValueError("a histogram needs one count per bound plus one for +Inf")
        for bound, n in zip([*bounds_list, math.inf], counts_list, strict=True):
            running += n
            le = {**(labels or {}), "le": _number(bound)}
            self._lines.append(f"{full}_bucket{_labels(le)} {running}")
        self._lines.append(f"{full}_sum{_labels(labels)} {_number(total_sum)}")
        self._lines.append(f"{full}_count{_labels(labels)} {running}")

    def render(self) -> str:
        return "\n".join(self._lines) + "\n"


class Histogram:
    """Fixed-bucket observations (e.g. commit seconds) for `MetricsText.histogram`.

    Written by one thread, read by any: a scrape may see a count one observation ahead of the sum,
    which Prometheus tolerates; no lock on the hot path.
    """

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds: tuple[float, ...] = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bucket whose bound >= value
        self.sum += value

    def write(self, out: MetricsText, name: str, help_text: str, labels: Labels | None = None) -> None:
        out.histogram(name, help_text, self.bounds, list(self.counts), self.sum, labels)


SECONDS_BOUNDS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Buckets for durations from a millisecond to ten seconds (store commits, outbox writes)."""

FINE_SECONDS_BOUNDS: Final = tuple(
    round(m * 10.0**e, 6) for e in range(-4, 3) for m in (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8)
)
"""Ten buckets per decade from 0.1 ms to 800 s, so a quantile read off them is at most ~25% high
(latencies, where the tail between 250 and 500 ms matters)."""
