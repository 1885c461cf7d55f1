"""Back-fill a gap from the server's history (HistoryRead, raw values) after a session was lost.

When a server loses the gateway's session while it keeps running (the outage outlived the
session timeout, the gateway was frozen or its host suspended), the values it queued for the old
subscription are gone. A server that keeps history still has them: after the new subscription
exists, the gateway reads each tag's raw history from just after the newest value it had received
up to the new subscription's start, and sends what it finds like any value, marked `historical`
on the wire. Values the new subscription also delivers (a tag's current value) come twice with the
same timestamp; the store keeps one.

Servers without history answer `BadHistoryOperationUnsupported` (or similar) per node: those tags
are skipped, counted and logged once per session. Reads follow continuation points and are cut into
batches of the server's `MaxNodesPerHistoryReadData` limit (read with the other limits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from asyncua import Client, ua

from plantwire import wire

from .ua_values import to_us, to_wire_value

VALUES_PER_READ: Final = 1000
"""NumValuesPerNode asked per request; the server may return fewer with a continuation point."""
MAX_VALUES_PER_TAG: Final = 100_000
"""A gap longer than this per tag is cut (counted): the server's history is bounded anyway."""


@dataclass(frozen=True, slots=True)
class Gap:
    """One tag to back-fill: values stamped after `after_us`, up to and including `until_us`."""

    tag: str
    node_id: ua.NodeId
    after_us: int
    until_us: int


@dataclass(slots=True)
class BackfillResult:
    samples: list[wire.Sample]
    unsupported: int = 0
    """Tags whose node the server keeps no history for (or refused to read)."""
    truncated: int = 0
    """Tags whose gap had more than MAX_VALUES_PER_TAG values (the rest was not read)."""


def _datetime(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def _timestamp(dv: ua.DataValue, mode: str) -> int | None:
    if mode == "server":
        ts = dv.ServerTimestamp or dv.SourceTimestamp
    else:  # source (and gateway: history has no receive time; the source time is what it recorded)
        ts = dv.SourceTimestamp or dv.ServerTimestamp
    return to_us(ts) if ts is not None else None


async def read_gaps(client: Client, gaps: Sequence[Gap], batch: int, mode: str) -> BackfillResult:
    """Raw history of every gap, as samples marked historical, oldest first per tag."""
    result = BackfillResult([])
    for start in range(0, len(gaps), max(1, batch)):
        await _read_batch(client, list(gaps[start : start + batch]), mode, result)
    return result


async def _read_batch(client: Client, gaps: list[Gap], mode: str, result: BackfillResult) -> None:
    pending: dict[int, bytes | None] = {i: None for i in range(len(gaps))}
    counts = dict.fromkeys(range(len(gaps)), 0)
    while pending:
        order = list(pending)
        details = ua.ReadRawModifiedDetails()
        details.IsReadModified = False
        # StartTime is inclusive: one µs after the newest value the gateway had.
        details.StartTime = _datetime(min(gaps[i].after_us for i in order) + 1)
        details.EndTime = _datetime(max(gaps[i].until_us for i in order))
        details.NumValuesPerNode = VALUES_PER_READ
        details.ReturnBounds = False
        params = ua.HistoryReadParameters()
        params.HistoryReadDetails = details
        params.TimestampsToReturn = ua.TimestampsToReturn.Both
        params.ReleaseContinuationPoints = False
        params.NodesToRead = [
            ua.HistoryReadValueId(NodeId=gaps[i].node_id, ContinuationPoint=pending[i]) for i in order
        ]
        answers = await client.uaclient.history_read(params)
        pending = {}
        for i, answer in zip(order, answers, strict=True):
            gap = gaps[i]
            if not answer.StatusCode.is_good():
                result.unsupported += 1
                continue
            values = answer.HistoryData.DataValues if answer.HistoryData is not None else None
            for dv in values or []:
                ts = _timestamp(dv, mode)
                if ts is None or not gap.after_us < ts <= gap.until_us:
                    continue
                value = dv.Value.Value if dv.Value is not None else None
                status = dv.StatusCode.value if dv.StatusCode is not None else wire.STATUS_GOOD
                result.samples.append(wire.Sample(gap.tag, ts, to_wire_value(value), status, historical=True))
                counts[i] += 1
            if answer.ContinuationPoint:
                if counts[i] < MAX_VALUES_PER_TAG:
                    pending[i] = answer.ContinuationPoint
                else:
                    result.truncated += 1
                    await _release(client, gap.node_id, answer.ContinuationPoint)


async def _release(client: Client, node_id: ua.NodeId, point: bytes) -> None:
    """Tell the server a continuation point is not needed any more."""
    params = ua.HistoryReadParameters()
    params.HistoryReadDetails = ua.ReadRawModifiedDetails()
    params.ReleaseContinuationPoints = True
    params.NodesToRead = [ua.HistoryReadValueId(NodeId=node_id, ContinuationPoint=point)]
    await client.uaclient.history_read(params)
