"""Live points to browsers: the WebSocket endpoint ``GET /api/stream`` (protocol in docs/stream.md).

Each connection holds one LiveBus subscription per pattern the client asked for; every subscription
has its own bounded buffer, so a slow browser loses its own oldest points (counted and reported in
the next message) and never slows ingest or other clients. Points go out in batches every
`SEND_INTERVAL_S`, which keeps the message rate low however fast the plant is.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any, Final

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from plantwire.logs import get_logger
from plantwire.timeunits import to_iso
from plantwire.wire import quality
from plantwire_platform.ingest.live_bus import LiveBus, LivePoint, Subscription
from plantwire_platform.web.errors import ApiError
from plantwire_platform.web.runtime import runtime_of

log = get_logger(__name__)

SEND_INTERVAL_S: Final = 0.2
"""How often points are sent: 5 messages/s is smooth in a chart and cheap for the browser."""
BUFFER_POINTS: Final = 5_000
"""Points waiting per subscription; beyond it the oldest are dropped and counted."""
MAX_SUBSCRIPTIONS: Final = 32
MAX_POINTS_PER_MESSAGE: Final = 2_000
MAX_PATTERN_CHARS: Final = 200
MAX_CLIENT_MESSAGE_CHARS: Final = 4_096
SEND_TIMEOUT_S: Final = 15.0
"""A client that cannot take one message in this long is disconnected (close code 1008)."""
HEARTBEAT_S: Final = 20.0

OPEN_STREAMS_KEY: Final = web.AppKey("open_streams", weakref.WeakSet[web.WebSocketResponse])


def point_json(p: LivePoint) -> dict[str, Any]:
    return {
        "device": p.device,
        "tag": p.tag,
        "ts": to_iso(p.ts),
        "value": p.value,
        "status": p.status,
        "quality": quality(p.status),
    }


class ClientError(Exception):
    """A client message the stream cannot follow: answered with an error message; the socket stays."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SlowClient(Exception):
    """The client did not take a message within SEND_TIMEOUT_S."""


def _pattern(spec: dict[str, Any], key: str) -> str:
    value = spec.get(key, "*")
    if not isinstance(value, str) or not value or len(value) > MAX_PATTERN_CHARS:
        raise ClientError(
            "invalid_pattern", f"{key!r} must be a glob pattern of 1 to {MAX_PATTERN_CHARS} characters"
        )
    return value


def parse_client_message(text: str) -> tuple[str, str, str]:
    """('subscribe' | 'unsubscribe', device glob, tag glob) from one client message."""
    if len(text) > MAX_CLIENT_MESSAGE_CHARS:
        raise ClientError(
            "message_too_large", f"messages are limited to {MAX_CLIENT_MESSAGE_CHARS} characters"
        )
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise ClientError("invalid_json", "messages must be JSON objects") from err
    if not isinstance(msg, dict) or len(msg) != 1:
        raise ClientError(
            "invalid_message", 'send {"subscribe": {"device": "<glob>", "tag": "<glob>"}} or "unsubscribe"'
        )
    ((action, spec),) = msg.items()
    if action not in ("subscribe", "unsubscribe") or not isinstance(spec, dict):
        raise ClientError("invalid_message", f"unknown message {action!r}; use subscribe or unsubscribe")
    unknown = set(spec) - {"device", "tag"}
    if unknown:
        raise ClientError("invalid_message", f"unknown field(s) {sorted(unknown)}; use device and tag")
    return action, _pattern(spec, "device"), _pattern(spec, "tag")


class StreamConnection:
    """One browser's subscriptions and the loop that sends their points."""

    def __init__(self, bus: LiveBus, ws: web.WebSocketResponse) -> None:
        self._bus = bus
        self._ws = ws
        self._subs: dict[tuple[str, str], tuple[Subscription, contextlib.ExitStack]] = {}
        self._drops_reported: dict[Subscription, int] = {}
        self._drops_pending = 0
        self.dropped_total = 0

    def close(self) -> None:
        for _, stack in self._subs.values():
            stack.close()
        self._subs.clear()

    async def send(self, message: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await self._ws.send_str(orjson.dumps(message).decode())
        except TimeoutError as err:
            raise SlowClient from err

    async def handle(self, text: str) -> None:
        """Follow one client message and confirm it (or say what was wrong)."""
        try:
            action, device, tag = parse_client_message(text)
        except ClientError as err:
            await self.send({"error": {"code": err.code, "message": err.message}})
            return
        key = (device, tag)
        if action == "unsubscribe":
            self._unsubscribe(key)
            await self.send({"unsubscribed": {"device": device, "tag": tag}})
            return
        if key not in self._subs:
            if len(self._subs) >= MAX_SUBSCRIPTIONS:
                message = f"at most {MAX_SUBSCRIPTIONS} subscriptions per stream; unsubscribe one first"
                await self.send({"error": {"code": "too_many_subscriptions", "message": message}})
                return
            stack = contextlib.ExitStack()
            sub = stack.enter_context(self._bus.subscribe(device, tag, BUFFER_POINTS))
            self._subs[key] = (sub, stack)
            self._drops_reported[sub] = 0
        await self.send({"subscribed": {"device": device, "tag": tag}})

    def _unsubscribe(self, key: tuple[str, str]) -> None:
        entry = self._subs.pop(key, None)
        if entry is not None:
            sub, stack = entry
            stack.close()
            self._drops_pending += sub.dropped - self._drops_reported.pop(sub)

    def take(self) -> tuple[list[LivePoint], int]:
        """Every point waiting (once, even if several patterns match it) and the drops since last time."""
        dropped, self._drops_pending = self._drops_pending, 0
        batches = []
        for sub, _ in self._subs.values():
            batches.append(sub.take())
            dropped += sub.dropped - self._drops_reported[sub]
            self._drops_reported[sub] = sub.dropped
        if len(batches) == 1:
            return batches[0], dropped
        seen: set[tuple[str, str, int]] = set()
        points = []
        for p in sorted((p for batch in batches for p in batch), key=lambda p: p.ts):
            key = (p.device, p.tag, p.ts)
            if key not in seen:
                seen.add(key)
                points.append(p)
        return points, dropped

    async def send_loop(self) -> None:
        while True:
            await asyncio.sleep(SEND_INTERVAL_S)
            points, dropped = self.take()
            if dropped:
                self.dropped_total += dropped
                log.warning("stream_client_slow", dropped=dropped, dropped_total=self.dropped_total)
                message: dict[str, Any] = {
                    "points": [],
                    "dropped": dropped,
                    "dropped_total": self.dropped_total,
                }
                await self.send(message)
            for start in range(0, len(points), MAX_POINTS_PER_MESSAGE):
                chunk = points[start : start + MAX_POINTS_PER_MESSAGE]
                await self.send({"points": [point_json(p) for p in chunk]})


async def stream(request: web.Request) -> web.StreamResponse:
    """GET /api/stream: upgrade to a WebSocket, then follow the client's subscriptions."""
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_CLIENT_MESSAGE_CHARS * 4)
    if not ws.can_prepare(request).ok:
        raise ApiError(
            400,
            "websocket_required",
            "GET /api/stream is a WebSocket endpoint; connect with a WebSocket client",
        )
    bus = runtime_of(request).live_bus
    if bus is None:
        raise ApiError(503, "unavailable", "the live stream is not available in this process")
    await ws.prepare(request)
    request.app[OPEN_STREAMS_KEY].add(ws)
    conn = StreamConnection(bus, ws)
    log.info("stream_opened", remote=request.remote)
    try:
        async with asyncio.TaskGroup() as tg:
            sender = tg.create_task(conn.send_loop())
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await conn.handle(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await conn.send({"error": {"code": "invalid_message", "message": "send JSON text"}})
            sender.cancel()
    except* SlowClient:
        log.warning("stream_client_too_slow", remote=request.remote, timeout_s=SEND_TIMEOUT_S)
        await ws.close(code=1008, message=b"client too slow")
    except* ConnectionError:
        log.info("stream_client_gone", remote=request.remote)  # went away mid-send; nothing to tell it
    finally:
        conn.close()
        log.info("stream_closed", remote=request.remote, dropped_total=conn.dropped_total)
    return ws


async def _close_streams(app: web.Application) -> None:
    """On shutdown, tell browsers the platform is going away (1001) instead of making the server wait."""
    streams: weakref.WeakSet[web.WebSocketResponse] = app[OPEN_STREAMS_KEY]
    for ws in list(streams):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"platform shutting down")


def add_stream_routes(app: web.Application) -> None:
    app[OPEN_STREAMS_KEY] = weakref.WeakSet()
    app.on_shutdown.append(_close_streams)
    app.router.add_get("/api/stream", stream)


def openapi_paths() -> dict[str, Any]:
    """``/api/stream`` for the OpenAPI document (merged in openapi.py); the protocol is in docs/stream.md."""
    time = {"type": "string", "format": "date-time", "examples": ["2026-11-24T11:20:00.123456Z"]}
    pattern = {"type": "object", "properties": {"device": {"type": "string"}, "tag": {"type": "string"}}}
    point = {
        "type": "object",
        "properties": {
            "device": {"type": "string"},
            "tag": {"type": "string"},
            "ts": time,
            "value": {"type": ["number", "boolean", "string", "null"]},
            "status": {"type": "integer", "minimum": 0},
            "quality": {"type": "string", "enum": ["good", "uncertain", "bad"]},
        },
        "required": ["device", "tag", "ts", "value", "status", "quality"],
        "additionalProperties": False,
    }
    points = {
        "type": "object",
        "properties": {
            "points": {"type": "array", "items": point},
            "dropped": {"type": "integer", "minimum": 1, "description": "Points lost since last message."},
            "dropped_total": {"type": "integer", "minimum": 1},
        },
        "required": ["points"],
        "additionalProperties": False,
    }
    client_error = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                "required": ["code", "message"],
            }
        },
        "required": ["error"],
    }
    server_message = {
        "oneOf": [
            points,
            {"type": "object", "properties": {"subscribed": pattern}, "required": ["subscribed"]},
            {"type": "object", "properties": {"unsubscribed": pattern}, "required": ["unsubscribed"]},
            client_error,
        ],
        "description": "One JSON text frame from the server.",
    }
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "/api/stream": {
            "get": {
                "operationId": "streamPoints",
                "summary": "WebSocket: live points as they are stored, for device/tag glob patterns.",
                "description": (
                    "Upgrade to a WebSocket, then send text frames "
                    '`{"subscribe": {"device": "<glob>", "tag": "<glob>"}}` (several allowed, each '
                    'confirmed by `{"subscribed": ...}`; `unsubscribe` removes one). The server sends '
                    f'`{{"points": [...]}}` every {int(SEND_INTERVAL_S * 1000)} ms while points match. '
                    f"Each subscription buffers at most {BUFFER_POINTS} points: a client that reads too "
                    "slowly loses the oldest and is told with `dropped` in a points message. The socket "
                    "closes with 1001 when the platform stops (reconnect) and 1008 when the client took "
                    f"no message for {int(SEND_TIMEOUT_S)} s. Details: docs/stream.md."
                ),
                "parameters": [],
                "responses": {
                    "101": {
                        "description": "Switching to the WebSocket; each server frame is one of these.",
                        "content": {"application/json": {"schema": server_message}},
                    },
                    "400": {"description": "Not a WebSocket upgrade request.", **error},
                    "503": {"description": "No live bus in this process.", **error},
                },
            }
        }
    }
