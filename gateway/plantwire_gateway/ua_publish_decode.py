"""A cheaper decoder for OPC UA PublishResponses: the gateway's hottest path.

asyncua decodes every structure through generic per-field closures and builds five objects per
value (MonitoredItemNotification, DataValue, Variant, StatusCode, two datetimes), then one event
per value through an asyncio queue: together most of the gateway's CPU per value at 10k values/s.
`decode_publish_response` reads the same bytes with `struct.unpack_from` at known offsets. The
common item of a DataChangeNotification (a DataValue holding a scalar number, boolean, string or
datetime, with no picoseconds) becomes one row, `(handle, value, status, source, server)` (status
as an int, timestamps as OPC UA FILETIME ints or None); every other shape (arrays, structures,
picoseconds, null Variants), the response header and every other notification type go through
asyncua's own decoders at that position.

The notification is a `CompactDataChange`, a `ua.DataChangeNotification` whose `MonitoredItems`
are built from the rows, exactly as asyncua builds them, when someone reads them, so any asyncua
client in the process works unchanged. A subscription passed to `deliver_compact` instead yields
one `CompactBatch` event per notification (the rows themselves): the gateway's device sessions.
tests/gateway/test_ua_publish_decode.py checks both against asyncua's decoder field by field.

`install()` puts the decoder in front of `asyncua.client.ua_session.struct_from_binary` (the name
the session calls for every response; only `ua.PublishResponse` is decoded here, every other type
is passed through). It is asyncua 2.1.0's (pinned); with another version it installs nothing and
the gateway runs on the stock decoder and events.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import asyncua
from asyncua import ua
from asyncua.client import ua_session
from asyncua.common.subscription import Subscription
from asyncua.common.utils import Buffer
from asyncua.ua import ua_binary

ASYNCUA_VERSION: Final = "2.1.0"

_DCN_ENCODING: Final = ua.ObjectIds.DataChangeNotification_Encoding_DefaultBinary
_SCALARS: Final[dict[int, struct.Struct]] = {
    vt.value: struct.Struct(fmt)
    for vt, fmt in (
        (ua.VariantType.Boolean, "<?"),
        (ua.VariantType.SByte, "<b"),
        (ua.VariantType.Byte, "<B"),
        (ua.VariantType.Int16, "<h"),
        (ua.VariantType.UInt16, "<H"),
        (ua.VariantType.Int32, "<i"),
        (ua.VariantType.UInt32, "<I"),
        (ua.VariantType.Int64, "<q"),
        (ua.VariantType.UInt64, "<Q"),
        (ua.VariantType.Float, "<f"),
        (ua.VariantType.Double, "<d"),
    )
}
_VARIANT_TYPES: Final = {vt.value: vt for vt in ua.VariantType}
_STRING: Final = ua.VariantType.String.value
_DATETIME: Final = ua.VariantType.DateTime.value
_I32: Final = struct.Struct("<i")
_U32: Final = struct.Struct("<I")
_I64: Final = struct.Struct("<q")
_HANDLE_MASK: Final = struct.Struct("<IB")
_FAST_MASK: Final = 0x0F
"""DataValue encoding bits decoded here: Value, StatusCode, SourceTimestamp, ServerTimestamp."""

_FILETIME_1970: Final = 116_444_736_000_000_000
"""1970-01-01 in OPC UA FILETIME (100 ns since 1601-01-01)."""
_MIN_US: Final = (0 - _FILETIME_1970) // 10
_MAX_US: Final = (ua.uatypes.MAX_OPC_FILETIME - _FILETIME_1970) // 10

Row = tuple[int, Any, int, int | None, int | None, int]
"""(client handle, value, status code, source FILETIME or None, server FILETIME or None, kind).

`kind` is the Variant's type (`ua.VariantType` value), 0 for a DataValue without a Value."""

_stock: Callable[[Any, Any], Any] | None = None


def filetime_us(filetime: int) -> int:
    """A FILETIME as wire time (µs since 1970), as asyncua's datetime for it would give."""
    if filetime >= ua.uatypes.MAX_OPC_FILETIME:
        return _MAX_US  # asyncua's cap: 9999-12-31
    if filetime < 0:
        return _MIN_US
    return (filetime - _FILETIME_1970) // 10


class CompactDataChange(ua.DataChangeNotification):
    """A DataChangeNotification kept as rows (and asyncua's items where a row could not be made)."""

    __slots__ = ("_items", "rows")

    def __init__(self, rows: list[Row | ua.MonitoredItemNotification], diagnostics: Any) -> None:
        self.rows = rows
        self._items: list[ua.MonitoredItemNotification] | None = None
        self.DiagnosticInfos = diagnostics

    @property
    def MonitoredItems(self) -> list[ua.MonitoredItemNotification]:  # a dataclass field in asyncua
        if self._items is None:
            self._items = [_item(r) if isinstance(r, tuple) else r for r in self.rows]
        return self._items

    @MonitoredItems.setter
    def MonitoredItems(self, items: list[ua.MonitoredItemNotification]) -> None:
        self._items = items


@dataclass(frozen=True, slots=True)
class CompactBatch:
    """One DataChangeNotification's rows, as one event of a `deliver_compact` subscription."""

    rows: list[Row | ua.MonitoredItemNotification]


def deliver_compact(sub: Subscription) -> None:
    """From now on `sub` yields a `CompactBatch` per CompactDataChange instead of an event per item.

    Rows are not checked against the subscription's monitored items (asyncua drops a handle it
    does not know): the consumer maps handles itself and skips unknown ones.
    """
    stock = sub._explode_datachange

    def explode(datachange: ua.DataChangeNotification) -> Iterator[Any]:
        if type(datachange) is CompactDataChange:
            yield CompactBatch(datachange.rows)
        else:
            yield from stock(datachange)

    sub._explode_datachange = explode  # type: ignore[method-assign]  # per-instance override of an asyncua method


def _item(row: Row) -> ua.MonitoredItemNotification:
    """The MonitoredItemNotification asyncua would have decoded for this row."""
    handle, value, status, source, server, kind = row
    kwargs: dict[str, Any] = {"StatusCode": ua.StatusCode(ua.UInt32(status))}
    if kind:
        kwargs["Value"] = ua.Variant(value, _VARIANT_TYPES[kind], None, is_array=False)
    if source is not None:
        kwargs["SourceTimestamp"] = ua.win_epoch_to_datetime(source)
    if server is not None:
        kwargs["ServerTimestamp"] = ua.win_epoch_to_datetime(server)
    return ua.MonitoredItemNotification(ClientHandle=handle, Value=ua.DataValue(**kwargs))


def install() -> bool:
    """Decode PublishResponses here from now on (idempotent); False if asyncua is not the pinned one."""
    global _stock
    if asyncua.__version__ != ASYNCUA_VERSION:
        return False
    if _stock is None:
        _stock = ua_session.struct_from_binary
        ua_session.struct_from_binary = _struct_from_binary
    return True


def installed() -> bool:
    return ua_session.struct_from_binary is _struct_from_binary


def _struct_from_binary(objtype: Any, data: Any) -> Any:
    if objtype is ua.PublishResponse:
        return decode_publish_response(data)
    assert _stock is not None
    return _stock(objtype, data)


def decode_publish_response(data: Buffer | bytes) -> ua.PublishResponse:
    """A PublishResponse from its binary encoding (the rest of `data` after the message header)."""
    raw = bytes(data)
    buf = Buffer(raw)
    type_id = ua_binary.nodeid_from_binary(buf)
    header = ua_binary.struct_from_binary(ua.ResponseHeader, buf)
    subscription_id = ua_binary.Primitives.UInt32.unpack(buf)
    available = ua_binary.unpack_uatype_array(ua.VariantType.UInt32, buf)
    more = ua_binary.Primitives.Boolean.unpack(buf)
    sequence = ua_binary.Primitives.UInt32.unpack(buf)
    publish_time = ua_binary.Primitives.DateTime.unpack(buf)
    count = ua_binary.Primitives.Int32.unpack(buf)
    notifications: list[Any] | None = None
    if count != -1:
        notifications = []
        for _ in range(count):
            pos = len(raw) - len(buf)
            fast = _data_change(raw, pos)
            if fast is None:
                notifications.append(ua_binary.extensionobject_from_binary(buf))
            else:
                notification, end = fast
                notifications.append(notification)
                buf.skip(end - pos)
    results = ua_binary.unpack_uatype_array(ua.VariantType.StatusCode, buf)
    diagnostics = ua_binary.unpack_uatype_array(ua.VariantType.DiagnosticInfo, buf)
    message = ua.NotificationMessage(
        SequenceNumber=sequence,
        PublishTime=publish_time,
        NotificationData=notifications,  # type: ignore[arg-type]  # None as asyncua decodes it
    )
    result = ua.PublishResult(
        SubscriptionId=subscription_id,
        AvailableSequenceNumbers=available,  # type: ignore[arg-type]  # None as asyncua decodes it
        MoreNotifications=more,
        NotificationMessage=message,
        Results=results,  # type: ignore[arg-type]  # None as asyncua decodes it
        DiagnosticInfos=diagnostics,  # type: ignore[arg-type]  # None as asyncua decodes it
    )
    return ua.PublishResponse(TypeId=type_id, ResponseHeader=header, Parameters=result)


def _data_change(raw: bytes, pos: int) -> tuple[CompactDataChange, int] | None:
    """The ExtensionObject at `pos` if it is a DataChangeNotification: (it, end), else None."""
    # A four-byte NodeId (0x01, namespace 0, UInt16 id), the body flag, the body's Int32 length.
    if raw[pos : pos + 2] != b"\x01\x00" or len(raw) < pos + 9:
        return None
    if struct.unpack_from("<H", raw, pos + 2)[0] != _DCN_ENCODING or raw[pos + 4] != 1:
        return None
    (length,) = _I32.unpack_from(raw, pos + 5)
    start = pos + 9
    end = start + length
    if length < 4 or end > len(raw):
        return None
    body = raw[:end]  # bounds every read below to this body
    return _decode_body(body, start), end


def _decode_body(body: bytes, pos: int) -> CompactDataChange:
    (count,) = _I32.unpack_from(body, pos)
    pos += 4
    rows: list[Row | ua.MonitoredItemNotification] = []
    append = rows.append
    unpack_head = _HANDLE_MASK.unpack_from
    unpack_i64 = _I64.unpack_from
    unpack_u32 = _U32.unpack_from
    scalars = _SCALARS
    for _ in range(count):  # an absent list (-1) is an empty one, as asyncua decodes it
        handle, mask = unpack_head(body, pos)
        pos += 5
        value: Any = None
        kind = 0
        if mask & ~_FAST_MASK:
            scalar = None
        elif mask & 1:
            encoding = body[pos]
            kind = encoding & 0x3F
            fmt = scalars.get(kind) if not encoding & 0xC0 else None
            if fmt is not None:  # the hot case, inline: a number or a boolean
                value = fmt.unpack_from(body, pos + 1)[0]
                scalar = pos + 1 + fmt.size
            else:
                other = _other_scalar(body, pos)
                scalar = None
                if other is not None:
                    value, scalar = other
        else:
            scalar = pos
        if scalar is None:  # asyncua's decoder, from the DataValue's encoding byte on
            buf = Buffer(body, pos - 1)
            dv = ua_binary.struct_from_binary(ua.DataValue, buf)
            pos = len(body) - len(buf)
            append(ua.MonitoredItemNotification(ClientHandle=handle, Value=dv))
            continue
        pos = scalar
        status = source = server = None
        if mask & 2:
            (status,) = unpack_u32(body, pos)
            pos += 4
        if mask & 4:
            (source,) = unpack_i64(body, pos)
            pos += 8
        if mask & 8:
            (server,) = unpack_i64(body, pos)
            pos += 8
        append((handle, value, status or 0, source, server, kind))
    diagnostics = ua_binary.unpack_uatype_array(ua.VariantType.DiagnosticInfo, Buffer(body, pos))
    return CompactDataChange(rows, diagnostics)


def _other_scalar(body: bytes, pos: int) -> tuple[Any, int] | None:
    """(value, end) for a scalar string or datetime Variant at `pos`; None for anything else."""
    encoding = body[pos]
    if encoding & 0xC0:  # an array, or dimensions
        return None
    kind = encoding & 0x3F
    pos += 1
    if kind == _STRING:
        (length,) = _I32.unpack_from(body, pos)
        pos += 4
        if length == -1:
            return None, pos
        if length < 0 or pos + length > len(body):
            return None
        text = body[pos : pos + length].decode(ua_binary.get_string_encoding(), errors="surrogateescape")
        return text, pos + length
    if kind == _DATETIME:
        return ua.win_epoch_to_datetime(_I64.unpack_from(body, pos)[0]), pos + 8
    return None
