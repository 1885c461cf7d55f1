"""DDATA metrics encoded once, when the gateway stores them: the rows of the Sparkplug outbox.

A protobuf message on the wire is its fields one after another (tag, then value), and a repeated
message field is each element as its own length-delimited field. So a DDATA `Payload` is
`timestamp` (field 1), then one field 2 per metric, then `seq` (field 3); the metrics do not depend
on the timestamp or seq of the message that carries them. The gateway therefore encodes each
batch's metrics when it stores the batch (report by exception, aliases, values) and, when it
publishes the row, only puts the message's timestamp and seq around those bytes.

The usual metric (alias, timestamp, a Double/Float/integer/Boolean/String value of its exact type,
good quality, live) is written here with `struct` and a varint; every other one (null, quality,
historical, arrays, DateTime, a value that needs converting or does not fit) is built by protobuf
itself, through the codec's checks. Fields are written in field-number order, as protobuf's own
serializer writes them, so both give the same bytes (tests/sparkplug compare them).

A row is `ROW_MAGIC`, varint(sent µs), varint(the device's alias epoch), then the metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from plantwire import wire
from plantwire.sparkplug import sparkplug_b_pb2 as pb
from plantwire.sparkplug.metric_slots import MetricSlot, quality_properties, wire_metric_value
from plantwire.sparkplug.payload import PayloadError, _encode_properties
from plantwire.sparkplug.protobuf_fields import TIMESTAMP_FIELD_BYTES, read_varint, varint
from plantwire.sparkplug.tag_types import sparkplug_quality

ROW_MAGIC: Final = b"S1"
"""Starts every pre-encoded row (a JSON row, from a gateway before this format, starts with `{`)."""

_PAYLOAD_TIMESTAMP: Final = b"\x08"  # field 1, varint
_PAYLOAD_METRIC: Final = b"\x12"  # field 2, length-delimited
_PAYLOAD_SEQ: Final = b"\x18"  # field 3, varint
_METRIC_ALIAS: Final = b"\x10"  # field 2, varint
_METRIC_TIMESTAMP: Final = b"\x18"  # field 3, varint


_METRIC_PREFIX: Final = tuple(_PAYLOAD_METRIC + bytes((n,)) for n in range(128))
"""Field 2's tag and length for a metric of fewer than 128 bytes (the usual ones are)."""


@dataclass(slots=True)
class EncodedMetrics:
    """What `encode_samples` made of a batch."""

    data: bytes = b""
    added: int = 0
    unknown: list[wire.Sample] = field(default_factory=list)
    """Samples of tags with no slot, in order: nothing was recorded for them."""
    refused: list[str] = field(default_factory=list)
    """Values left out because they do not fit their metric (each says which and why)."""


def encode_samples(slots: Mapping[str, MetricSlot], samples: Iterable[wire.Sample]) -> EncodedMetrics:
    """The metrics of the samples that changed since the last recorded (historical ones always,
    flagged, and not recorded), recorded as they are encoded. Samples of a tag with no slot are
    returned in `unknown`; a value that does not fit its metric is left out and said in `refused`."""
    out = EncodedMetrics()
    parts: list[bytes] = []
    app = parts.append
    prefix = _METRIC_PREFIX
    good = wire.STATUS_GOOD
    added = 0
    last_ts = last_hi = -1
    ts_field = hi_bytes = b""
    for s in samples:
        slot = slots.get(s.tag)
        if slot is None:
            out.unknown.append(s)
            continue
        v: Any = s.value
        if (
            type(v) is slot.fast_type  # (None for a datatype without a packer)
            and s.status == good
            and not s.historical
            and (not slot.ranged or slot.low <= v <= slot.high)
        ):
            # The usual metric: alias, timestamp, value; by exception.
            old = slot.value
            if old == v and slot.quality is None and type(old) is type(v):
                continue  # (an unrecorded slot holds None)
            ts = s.ts // 1000
            if ts != last_ts:
                last_ts = ts
                if ts >= 16384:  # varint: two low 7-bit groups, then ts >> 14 (slow to change)
                    hi = ts >> 14
                    if hi != last_hi:
                        last_hi, hi_bytes = hi, varint(hi)
                    ts_field = bytes((0x18, (ts & 0x7F) | 0x80, ((ts >> 7) & 0x7F) | 0x80)) + hi_bytes
                else:
                    ts_field = _METRIC_TIMESTAMP + varint(ts)
            whole = slot.whole
            if whole is not None and len(ts_field) == TIMESTAMP_FIELD_BYTES:
                try:
                    app(whole(ts_field, slot.whole_tag, v))
                except OverflowError:  # a Float beyond float32: protobuf's path (inf)
                    pass
                else:
                    added += 1
                    slot.recorded = True
                    slot.value = v
                    slot.timestamp = ts
                    slot.quality = None
                    continue
            try:
                body = slot.head + ts_field + slot.pack(v)
            except (OverflowError, UnicodeEncodeError):
                body = None  # protobuf's own path decides (inf for a Float, an error for a str)
            if body is not None:
                n = len(body)
                app(prefix[n] if n < 128 else _PAYLOAD_METRIC + varint(n))
                app(body)
                added += 1
                slot.recorded = True
                slot.value = v
                slot.timestamp = ts
                slot.quality = None
                continue
        if _encode_general(slot, s, app, out.refused):
            added += 1
    out.data = b"".join(parts)
    out.added = added
    return out


def _encode_general(
    slot: MetricSlot, s: wire.Sample, app: Callable[[bytes], None], refused: list[str]
) -> bool:
    """Any other sample (null, quality, historical, a value to convert): through protobuf, by
    exception unless historical; False if it is not sent (unchanged, or refused: said in `refused`)."""
    quality = None if s.status == wire.STATUS_GOOD else sparkplug_quality(s.status)
    fast = type(s.value) is slot.fast_type and (not slot.ranged or slot.low <= s.value <= slot.high)  # type: ignore[operator]  # ranged: an int
    v: Any = s.value if fast else wire_metric_value(slot.datatype, s.value)
    ts = s.ts // 1000
    hist = s.historical
    old = slot.value
    if not hist and slot.recorded and old == v and type(old) is type(v) and slot.quality == quality:
        return False
    try:
        body = _general(slot, v, ts, hist, quality)
    except PayloadError as err:
        refused.append(str(err))
        return False
    app(_PAYLOAD_METRIC + varint(len(body)))
    app(body)
    if not hist:
        slot.recorded, slot.value, slot.timestamp, slot.quality = True, v, ts, quality
    return True


def _general(slot: MetricSlot, v: object, ts: int, hist: bool, quality: int | None) -> bytes:
    """One metric through protobuf and the codec's checks; PayloadError naming the metric."""
    which: str
    raw: Any
    which, raw = ("is_null", True) if v is None else slot.raw(v)  # PayloadError names the metric
    try:
        m = pb.Payload.Metric(alias=slot.alias, timestamp=ts, **{which: raw})
    except (TypeError, ValueError) as err:  # protobuf refusing a value the checks let through
        raise PayloadError(f"metric alias {slot.alias}: {err}") from err
    if hist:
        m.is_historical = True
    if quality is not None:
        _encode_properties(m.properties, quality_properties(quality))
    return m.SerializeToString()


def pack_row(sent_us: int, epoch: int, metrics: bytes) -> bytes:
    return ROW_MAGIC + varint(sent_us) + varint(epoch) + metrics


@dataclass(frozen=True, slots=True)
class Row:
    sent_us: int
    epoch: int
    metrics: bytes


def unpack_row(payload: bytes) -> Row:
    """A row made by `pack_row`; ValueError for anything else."""
    if not payload.startswith(ROW_MAGIC):
        raise ValueError("not a pre-encoded Sparkplug row")
    sent, pos = read_varint(payload, len(ROW_MAGIC))
    epoch, pos = read_varint(payload, pos)
    return Row(sent, epoch, payload[pos:])


def ddata_payload(timestamp_ms: int, seq: int, metrics: bytes) -> bytes:
    """The DDATA `Payload` of pre-encoded metrics: the same bytes protobuf would make of it."""
    return _PAYLOAD_TIMESTAMP + varint(timestamp_ms) + metrics + _PAYLOAD_SEQ + varint(seq)
