"""The gateway's devices: the configured ones plus those attached at runtime, each with a running session.

Attached devices are kept in `<data_dir>/devices.json` (written atomically: temp file, fsync,
rename) and started again after a restart. Devices from the config file always win over a stored
one with the same id. Attach is all-or-nothing: the endpoint is probed first (connect, resolve the
root, browse) within a short timeout; only a device that passed is stored and started, so a bad
endpoint or root leaves nothing behind and the other devices never notice.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, Final

from asyncua import ua
from pydantic import ValidationError

from plantwire import wire
from plantwire.logs import get_logger

from .browse import BrowseError, browse_tags
from .device_session import DeviceSession, Store
from .northbound import RetainedSink
from .opcua_connect import ConnectFailure, classify, make_client
from .pki import Pki
from .server_profile import TooManyOperations
from .settings import DeviceConfig, GatewaySettings
from .stats import GatewayStats

log = get_logger(__name__)

DEVICES_FILE: Final = "devices.json"
PROBE_TIMEOUT: Final = 10.0
"""How long attach waits for the endpoint to connect (discovery, secure channel) and browse; the
platform waits 15 s for the reply."""
ATTACH_KEYS: Final = frozenset(DeviceConfig.model_fields) - {"id"}
"""The attach body's keys: any DeviceConfig field (security, identity, trust and the rest)."""
DETACHED_ERROR: Final = "detached"
SESSIONS_DIR: Final = "sessions"
"""Per-device OPC UA session state kept for a resume after a gateway restart (see session_resume)."""
"""The `error` of the offline status a detached device leaves behind."""


class RegistryError(Exception):
    """An attach or detach that cannot be done; `code` is one of `wire.REPLY_CODES`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def read_attached(path: Path) -> list[DeviceConfig]:
    """Devices stored by earlier attaches; a damaged file is reported and ignored, not fatal."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [DeviceConfig.model_validate(item) for item in raw.get("devices", [])]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, AttributeError, ValidationError) as err:
        log.error("attached_devices_unreadable", path=str(path), error=str(err).splitlines()[0])
        return []


def write_attached(path: Path, devices: list[DeviceConfig]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    body = json.dumps({"devices": [d.model_dump(mode="json") for d in devices]}, indent=2)
    with tmp.open("w", encoding="utf-8") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


async def probe(device: DeviceConfig, pki: Pki) -> int:
    """Connect, resolve the root and browse; the number of tags found. Raises RegistryError.

    The code says what happened (`security_rejected`, `certificate_untrusted`, `identity_rejected`,
    `too_many_operations`, `unreachable`, `unknown_node`), the message what to do about it.
    """
    timeout = PROBE_TIMEOUT
    try:
        async with asyncio.timeout(timeout):
            client = await make_client(device, pki, " (attach check)")
            await client.connect(auto_reconnect=False)
    except (OSError, TimeoutError, ua.UaError, ConnectionError, ConnectFailure) as err:
        failure = classify(err, device, pki)
        raise RegistryError(failure.code, str(failure.args[0])) from err
    try:
        async with asyncio.timeout(timeout):
            _, tags = await browse_tags(client, device)
        return len(tags)
    except BrowseError as err:
        raise RegistryError("unknown_node", str(err)) from err
    except TooManyOperations as err:
        raise RegistryError("too_many_operations", f"{device.endpoint}: {err}") from err
    except (OSError, TimeoutError, ua.UaError, ConnectionError) as err:
        failure = classify(err, device, pki)
        raise RegistryError(
            failure.code, f"{device.endpoint} failed while browsing: {failure.args[0]}"
        ) from err
    finally:
        try:
            async with asyncio.timeout(2.0):
                await client.disconnect()
        except (OSError, TimeoutError, ua.UaError, ConnectionError, RuntimeError):
            client.disconnect_socket()


class DeviceRegistry:
    """Owns every device session; `run()` keeps them running until cancelled."""

    def __init__(
        self, settings: GatewaySettings, link: RetainedSink, store: Store, stats: GatewayStats
    ) -> None:
        self.settings = settings
        self.link = link
        self.store = store
        self.stats = stats
        self.path = settings.data_dir / DEVICES_FILE
        self.pki = Pki(settings.data_dir)
        self.configured: dict[str, DeviceConfig] = {d.id: d for d in settings.devices}
        self.attached: dict[str, DeviceConfig] = {}
        self.sessions: list[DeviceSession] = []
        """Live list (the gateway flushes these on shutdown)."""
        self.ready = asyncio.Event()
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._lock = asyncio.Lock()
        self._probing: set[str] = set()

    def devices(self) -> list[DeviceConfig]:
        return [*self.configured.values(), *self.attached.values()]

    def session(self, device_id: str) -> DeviceSession | None:
        return next((s for s in self.sessions if s.device.id == device_id), None)

    async def run(self) -> None:
        for device in await asyncio.to_thread(read_attached, self.path):
            if device.id in self.configured:
                log.warning("attached_device_shadowed", device_id=device.id, hint="the config file wins")
                continue
            self.attached[device.id] = device
        if not self.configured and not self.attached:
            log.warning("gateway_without_devices", hint="add [[devices]] to the config, --device, or attach")
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            for device in self.devices():
                self._start(device)
            self.ready.set()
            try:
                await asyncio.Event().wait()
            finally:
                self._tg = None

    def _start(self, device: DeviceConfig) -> None:
        assert self._tg is not None
        session = DeviceSession(
            device,
            self.settings.id,
            self.link,
            self.store,
            self.stats,
            self.settings.mqtt.reconnect_max_delay,
            self.pki,
            self.settings.data_dir / SESSIONS_DIR,
        )
        self.sessions.append(session)
        self._tasks[device.id] = [
            self._tg.create_task(session.run(), name=f"device-{device.id}"),
            self._tg.create_task(session.flush_loop(), name=f"flush-{device.id}"),
        ]

    async def attach(self, raw: dict[str, Any]) -> tuple[DeviceConfig, int]:
        """Probe, store and start a new device; (its config, tags found). Raises RegistryError."""
        try:
            device = DeviceConfig.model_validate(raw)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise RegistryError("invalid", f"{where}: {first['msg']}" if where else first["msg"]) from None
        await self.ready.wait()
        if device.id in self._tasks or device.id in self._probing:
            raise RegistryError("duplicate", f"device {device.id!r} is already attached to this gateway")
        self._probing.add(device.id)
        try:
            tags = await probe(device, self.pki)
            async with self._lock:
                attached = {**self.attached, device.id: device}
                await asyncio.to_thread(write_attached, self.path, list(attached.values()))
                self.attached = attached
                self._start(device)
        finally:
            self._probing.discard(device.id)
        log.info("device_attached", device_id=device.id, endpoint=device.endpoint, tags=tags)
        return device, tags

    async def detach(self, device_id: str) -> DeviceConfig:
        """Stop the session, keep what it received, leave an offline 'detached' status, clear meta."""
        await self.ready.wait()
        if device_id in self.configured:
            raise RegistryError(
                "configured",
                f"device {device_id!r} comes from the gateway's configuration; remove it there and restart",
            )
        async with self._lock:
            device = self.attached.get(device_id)
            if device is None:
                raise RegistryError("unknown_device", f"device {device_id!r} is not attached to this gateway")
            remaining = {k: v for k, v in self.attached.items() if k != device_id}
            await asyncio.to_thread(write_attached, self.path, list(remaining.values()))
            self.attached = remaining
            await self._stop(device)
        log.info("device_detached", device_id=device_id)
        return device

    async def _stop(self, device: DeviceConfig) -> None:
        tasks = self._tasks.pop(device.id, [])
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        session = self.session(device.id)
        if session is not None:
            self.sessions.remove(session)
            if session.resume is not None:  # detached: nothing to resume (the server expires the session)
                await asyncio.to_thread(session.resume.forget)
            pending = session.take_pending()
            if pending:
                await self.store(device.id, pending)
        self.stats.device_states.pop(device.id, None)
        gateway = self.settings.id
        status = wire.DeviceStatus("offline", wire.now_us(), device.endpoint, DETACHED_ERROR)
        self.link.publish_retained(
            wire.device_topic(gateway, device.id, "status"), wire.encode_device_status(status)
        )
        # An empty retained message deletes the retained meta, so new subscribers never see the device.
        self.link.publish_retained(wire.device_topic(gateway, device.id, "meta"), b"")
