"""The gateway's PublishResponse decoder builds exactly what asyncua's own decoder builds."""

from __future__ import annotations

import asyncio
import struct
from datetime import UTC, datetime

import pytest
from asyncua import Client, Server, ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary

from plantwire.broker import free_port
from plantwire_gateway import device_session, ua_publish_decode
from plantwire_gateway.ua_values import to_us
from plantwire_sims.asyncua_internals import init_server

T = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _dv(value: ua.Variant | None, **fields: object) -> ua.DataValue:
    return ua.DataValue(value, **fields) if value is not None else ua.DataValue(**fields)  # type: ignore[arg-type]


VALUES = [
    _dv(ua.Variant(21.5, ua.VariantType.Double), SourceTimestamp=T, ServerTimestamp=T),
    _dv(ua.Variant(-1.25, ua.VariantType.Float), SourceTimestamp=T),
    _dv(ua.Variant(True, ua.VariantType.Boolean), ServerTimestamp=T),
    _dv(ua.Variant(-7, ua.VariantType.SByte)),
    _dv(ua.Variant(200, ua.VariantType.Byte)),
    _dv(ua.Variant(-300, ua.VariantType.Int16)),
    _dv(ua.Variant(60000, ua.VariantType.UInt16)),
    _dv(ua.Variant(-(2**31), ua.VariantType.Int32)),
    _dv(ua.Variant(2**32 - 1, ua.VariantType.UInt32)),
    _dv(ua.Variant(-(2**63), ua.VariantType.Int64)),
    _dv(ua.Variant(2**64 - 1, ua.VariantType.UInt64)),
    _dv(ua.Variant("Fräse läuft", ua.VariantType.String), SourceTimestamp=T),
    _dv(ua.Variant(None, ua.VariantType.String)),
    _dv(ua.Variant("", ua.VariantType.String)),
    _dv(ua.Variant(T, ua.VariantType.DateTime)),
    _dv(ua.Variant(datetime(1600, 1, 1, tzinfo=UTC), ua.VariantType.DateTime)),  # before the epoch
    _dv(
        ua.Variant(1.0, ua.VariantType.Double),
        StatusCode=ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue),
    ),
    _dv(None, StatusCode=ua.StatusCode(ua.StatusCodes.BadNoCommunication), SourceTimestamp=T),
    _dv(None),
    # Shapes this decoder hands to asyncua's: arrays, matrices, structures, picoseconds, null.
    _dv(ua.Variant([1.0, 2.0, 3.0], ua.VariantType.Double), SourceTimestamp=T),
    _dv(ua.Variant([[1, 2], [3, 4]], ua.VariantType.Int32, [2, 2])),
    _dv(ua.Variant(ua.LocalizedText("Halt", "de-DE"))),
    _dv(ua.Variant(ua.NodeId("x", 2))),
    _dv(ua.Variant(b"\x00\xff", ua.VariantType.ByteString)),
    _dv(ua.Variant(ua.QualifiedName("Name", 2))),
    _dv(ua.Variant(None, ua.VariantType.Null)),
    _dv(ua.Variant(5.0, ua.VariantType.Double), SourceTimestamp=T, SourcePicoseconds=10),
    _dv(ua.Variant(5.0, ua.VariantType.Double), ServerTimestamp=T, ServerPicoseconds=10),
]


def _response(data: list[object], **result: object) -> bytes:
    message = ua.NotificationMessage(SequenceNumber=42, PublishTime=T, NotificationData=data)  # type: ignore[arg-type]
    params = ua.PublishResult(
        SubscriptionId=7, AvailableSequenceNumbers=[40, 41, 42], NotificationMessage=message
    )
    for name, value in result.items():
        setattr(params, name, value)
    return struct_to_binary(ua.PublishResponse(Parameters=params))


def _both(encoded: bytes) -> tuple[ua.PublishResponse, ua.PublishResponse]:
    """(ours with its CompactDataChanges as plain ones, asyncua's)."""
    stock = struct_from_binary(ua.PublishResponse, Buffer(encoded))
    ours = ua_publish_decode.decode_publish_response(Buffer(encoded))
    message = ours.Parameters.NotificationMessage
    compact = [n for n in message.NotificationData if isinstance(n, ua_publish_decode.CompactDataChange)]
    expected = [
        n
        for n in stock.Parameters.NotificationMessage.NotificationData
        if isinstance(n, ua.DataChangeNotification)
    ]
    assert len(compact) == len(expected)  # every DataChangeNotification took the fast path
    message.NotificationData = [
        ua.DataChangeNotification(MonitoredItems=n.MonitoredItems, DiagnosticInfos=n.DiagnosticInfos)
        if isinstance(n, ua_publish_decode.CompactDataChange)
        else n
        for n in message.NotificationData
    ]
    return ours, stock


def test_every_value_shape_decodes_as_asyncua_decodes_it() -> None:
    items = [ua.MonitoredItemNotification(ClientHandle=h, Value=v) for h, v in enumerate(VALUES, start=1)]
    encoded = _response([ua.DataChangeNotification(MonitoredItems=items)])
    ours, stock = _both(encoded)
    assert ours == stock
    decoded = ours.Parameters.NotificationMessage.NotificationData[0].MonitoredItems
    assert decoded[0].Value.Value == ua.Variant(21.5, ua.VariantType.Double)  # not trivially empty
    assert decoded[0].Value.SourceTimestamp == T
    rows = (
        ua_publish_decode.decode_publish_response(Buffer(encoded))
        .Parameters.NotificationMessage.NotificationData[0]
        .rows
    )
    assert sum(type(r) is tuple for r in rows) == 17  # the first 17 (scalars) are rows, the rest items


def test_a_row_says_what_the_gateway_reads_from_asyncuas_item() -> None:
    """Value, status and both timestamps (as wire µs) of a row equal those of asyncua's DataValue."""
    items = [ua.MonitoredItemNotification(ClientHandle=h, Value=v) for h, v in enumerate(VALUES, start=1)]
    encoded = _response([ua.DataChangeNotification(MonitoredItems=items)])
    notification = ua_publish_decode.decode_publish_response(
        Buffer(encoded)
    ).Parameters.NotificationMessage.NotificationData[0]
    stock = struct_from_binary(
        ua.PublishResponse, Buffer(encoded)
    ).Parameters.NotificationMessage.NotificationData[0]
    by_handle = {m.ClientHandle: m.Value for m in stock.MonitoredItems}
    for handle, value, status, source, server, _ in (r for r in notification.rows if type(r) is tuple):
        dv = by_handle[handle]
        assert value == dv.Value.Value
        assert status == dv.StatusCode.value
        for filetime, stamp in ((source, dv.SourceTimestamp), (server, dv.ServerTimestamp)):
            assert (filetime is None) == (stamp is None)
            if filetime is not None:
                assert ua_publish_decode.filetime_us(filetime) == to_us(stamp)


@pytest.mark.parametrize(
    "filetime", [-5, 0, 9, 10, 116_444_736_000_000_000, 134_000_000_000_123_456, 2**63 - 1]
)
def test_filetime_us_is_asyncuas_datetime_in_wire_time(filetime: int) -> None:
    assert ua_publish_decode.filetime_us(filetime) == to_us(ua.win_epoch_to_datetime(filetime))


@pytest.mark.parametrize(
    "data",
    [
        [],
        [ua.StatusChangeNotification(Status=ua.StatusCode(ua.StatusCodes.BadTimeout))],
        [ua.EventNotificationList(Events=[ua.EventFieldList(ClientHandle=3, EventFields=[ua.Variant(1.5)])])],
        [
            ua.DataChangeNotification(MonitoredItems=[ua.MonitoredItemNotification(1, VALUES[0])]),
            ua.StatusChangeNotification(Status=ua.StatusCode(ua.StatusCodes.BadShutdown)),
        ],
        [ua.DataChangeNotification(MonitoredItems=[], DiagnosticInfos=[ua.DiagnosticInfo(SymbolicId=3)])],
    ],
)
def test_other_notifications_and_the_envelope_decode_as_asyncua_decodes_them(data: list[object]) -> None:
    ours, stock = _both(
        _response(data, Results=[ua.StatusCode(), ua.StatusCode(ua.StatusCodes.BadSequenceNumberUnknown)])
    )
    assert ours == stock
    assert ours.Parameters.NotificationMessage.SequenceNumber == 42


@pytest.mark.parametrize(
    ("data", "absent"),
    [
        ([ua.DataChangeNotification(MonitoredItems=None, DiagnosticInfos=None)], {}),  # type: ignore[arg-type]
        (None, {}),
        ([], {"AvailableSequenceNumbers": None, "Results": None, "DiagnosticInfos": None}),
    ],
)
def test_absent_lists_decode_as_asyncua_decodes_them(
    data: list[object] | None, absent: dict[str, None]
) -> None:
    encoded = _response(data, **absent)  # type: ignore[arg-type]
    if data is None:  # no notification at all (a keep-alive)
        stock = struct_from_binary(ua.PublishResponse, Buffer(encoded))
        assert ua_publish_decode.decode_publish_response(Buffer(encoded)) == stock
    else:
        ours, stock = _both(encoded)
        assert ours == stock


def test_a_truncated_response_is_an_error_not_a_short_result() -> None:
    items = [ua.MonitoredItemNotification(ClientHandle=1, Value=VALUES[0])]
    encoded = _response([ua.DataChangeNotification(MonitoredItems=items)])
    with pytest.raises((struct.error, ua.UaError)):  # the session makes it a UaStructParsingError
        ua_publish_decode.decode_publish_response(Buffer(encoded[:-30]))


def test_the_gateway_runs_on_it() -> None:
    assert device_session.FAST_PUBLISH_DECODE
    assert ua_publish_decode.installed()
    # Every other response type still goes to asyncua's decoder.
    read = ua.ReadResponse(Results=[VALUES[0]])
    assert ua_publish_decode._struct_from_binary(ua.ReadResponse, Buffer(struct_to_binary(read))) == read


async def test_a_real_subscription_delivers_one_batch_of_rows_per_publish_response() -> None:
    """Through asyncua's own session and subscription: the decoder is in their path, and
    `deliver_compact` turns a notification message into one CompactBatch of rows."""
    server = Server()
    await init_server(server)  # asyncua's init, its standard nodes copied (fast)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    server.set_endpoint(endpoint)
    idx = await server.register_namespace("urn:plantwire:test:publish-decode")
    obj = await server.nodes.objects.add_object(ua.NodeId("d", idx), ua.QualifiedName("d", idx))
    nodes = [await obj.add_variable(ua.NodeId(f"d.v{i}", idx), f"v{i}", 0.0) for i in range(3)]
    async with server, Client(endpoint) as client:
        sub = await client.create_subscription(50, handler=None)
        ua_publish_decode.deliver_compact(sub)
        await sub.subscribe_data_change(nodes)
        for i, node in enumerate(nodes):
            await node.write_value(ua.Variant(10.5 + i, ua.VariantType.Double))
        seen: dict[int, float] = {}
        async with asyncio.timeout(10):
            async for event in sub:
                assert type(event) is ua_publish_decode.CompactBatch
                for row in event.rows:
                    assert isinstance(row, tuple)
                    handle, value, status, _source, server_ts, kind = row
                    assert status == 0 and kind == ua.VariantType.Double.value and server_ts is not None
                    seen[handle] = value
                if sorted(seen.values()) == [10.5, 11.5, 12.5]:
                    break
        await sub.delete()
