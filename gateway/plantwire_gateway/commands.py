"""The gateway's command side: commands in on `{gateway}/cmd`, replies out on `{gateway}/reply`.

Each command runs in its own task (at most `MAX_CONCURRENT` at once; a slow attach probe must not
hold up a write to another machine). Every id goes through the `CommandLog` first, so a command
that MQTT delivers twice, or that the platform retries with the same id, runs at most once and is
answered with the reply kept from the first run.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from asyncua import ua

from plantwire import wire
from plantwire.logs import get_logger
from plantwire.mqtt_control import ControlClient

from .command_log import CommandLog
from .device_control import ControlError, DeviceControl
from .device_registry import ATTACH_KEYS, DeviceRegistry, RegistryError
from .settings import GatewaySettings

log = get_logger(__name__)

COMMANDS_FILE: Final = "commands.sqlite3"
MAX_CONCURRENT: Final = 8
QUEUE_MAX: Final = 100
"""Commands waiting to start; beyond this they are dropped (the platform times out) with a warning."""


class CommandService:
    """Run with `await service.run()`; cancel to stop."""

    def __init__(self, settings: GatewaySettings, registry: DeviceRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self._queue: asyncio.Queue[wire.Command] = asyncio.Queue(QUEUE_MAX)
        self._controls: dict[str, DeviceControl] = {}
        self._running: set[str] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._client: ControlClient | None = None
        self._log: CommandLog | None = None
        self.subscribed = asyncio.Event()
        """Set while the command topic's subscription is acknowledged (the link's `online` waits for it)."""
        self.executed = 0
        """Commands actually run (not answered from the log); for tests and stats."""

    async def run(self) -> None:
        gw = self.settings.id
        cmd_log = await asyncio.to_thread(CommandLog.open, self.settings.data_dir / COMMANDS_FILE)
        self._log = cmd_log
        try:
            async with ControlClient(
                self.settings.mqtt,
                f"plantwire-gw-{gw}-cmd",
                [wire.command_topic(gw)],
                self._on_message,
                subscribed=self.subscribed,
            ) as client:
                self._client = client
                sem = asyncio.Semaphore(MAX_CONCURRENT)
                async with asyncio.TaskGroup() as tg:
                    while True:
                        cmd = await self._queue.get()
                        await sem.acquire()
                        task = tg.create_task(self._handle(cmd), name=f"cmd-{cmd.id}")
                        task.add_done_callback(lambda _: sem.release())
        finally:
            for control in self._controls.values():
                await control.close()
            await asyncio.to_thread(cmd_log.close)

    async def execute(self, cmd: wire.Command) -> wire.CommandReply:
        """Run a command that came another way (a Sparkplug DCMD write) with the same checks as `cmd`."""
        return await self._execute(cmd, wire.now_us())

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            cmd = wire.decode_command(payload)
        except wire.WireError as err:
            log.warning("command_rejected", topic=topic, error=str(err))
            return
        try:
            self._queue.put_nowait(cmd)
        except asyncio.QueueFull:
            log.warning("command_dropped", command_id=cmd.id, reason="queue full")

    async def _handle(self, cmd: wire.Command) -> None:
        if cmd.id in self._running:
            return  # a redelivery of a command that is running now: its reply is on the way
        received = wire.now_us()
        assert self._log is not None
        self._running.add(cmd.id)
        try:
            new, kept = await asyncio.to_thread(self._log.begin, cmd.id, received)
            if not new:
                if kept is None:
                    kept = wire.encode_reply(
                        _error(
                            cmd,
                            received,
                            "interrupted",
                            "the gateway stopped while running this command; its outcome is unknown",
                        )
                    )
                log.info("command_repeated", command_id=cmd.id, op=cmd.op)
                self._publish(kept)
                return
            reply = await self._execute(cmd, received)
            payload = wire.encode_reply(reply)
            await asyncio.to_thread(self._log.finish, cmd.id, payload)
            self._publish(payload)
        finally:
            self._running.discard(cmd.id)

    def _publish(self, payload: bytes) -> None:
        if self._client is None or not self._client.publish(wire.reply_topic(self.settings.id), payload):
            log.warning("command_reply_not_sent", reason="control connection down")

    async def _execute(self, cmd: wire.Command, received: int) -> wire.CommandReply:
        if received > cmd.expires:
            return _error(cmd, received, "expired", "the command arrived after its expiry time; not run")
        self.executed += 1
        try:
            result = await self._dispatch(cmd)
        except ControlError as err:
            return _error(cmd, received, err.code, str(err), err.status)
        except RegistryError as err:
            return _error(cmd, received, err.code, str(err))
        except Exception as err:  # the command's root: report it, keep serving
            log.exception("command_failed", command_id=cmd.id, op=cmd.op, device_id=cmd.device)
            return _error(cmd, received, "error", f"internal error: {type(err).__name__}")
        log.info("command_done", command_id=cmd.id, op=cmd.op, device_id=cmd.device, user=cmd.user)
        return wire.CommandReply(
            cmd.id, cmd.op, cmd.device, True, "ok", result=result, received=received, done=wire.now_us()
        )

    async def _dispatch(self, cmd: wire.Command) -> dict[str, Any]:
        args = cmd.args
        if cmd.op == "attach":
            raw = {k: v for k, v in args.items() if k in ATTACH_KEYS and v is not None}
            device, tags = await self.registry.attach({"id": cmd.device, **raw})
            return {"endpoint": device.endpoint, "root": device.root, "tags": tags}
        if cmd.op == "detach":
            await self.registry.detach(cmd.device)
            control = self._controls.pop(cmd.device, None)
            if control is not None:
                await control.close()
            return {}
        control = self._control(cmd.device)
        if cmd.op == "browse":
            return await control.browse(args.get("node"))
        if cmd.op == "call":
            return await control.call(args["method"], list(args.get("args", [])))
        session = self.registry.session(cmd.device)
        assert session is not None
        if not session.tags:
            raise ControlError("not_connected", f"device {cmd.device!r} has not been browsed yet (offline?)")
        tag = next((t for t in session.tags if t.info.tag == args["tag"]), None)
        if tag is None:
            raise ControlError("unknown_tag", f"device {cmd.device!r} has no tag {args['tag']!r}")
        if not tag.info.writable:
            raise ControlError("not_writable", f"tag {args['tag']!r} of {cmd.device!r} is read-only")
        return await control.write(tag, args["value"])

    def _control(self, device_id: str) -> DeviceControl:
        session = self.registry.session(device_id)
        if session is None:
            raise ControlError("unknown_device", f"device {device_id!r} is not attached to this gateway")
        control = self._controls.get(device_id)
        if control is None or control.device != session.device:
            if control is not None:  # the device was detached and attached again, maybe elsewhere
                task = asyncio.create_task(control.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            control = self._controls[device_id] = DeviceControl(session.device, session.pki)
        return control


def _error(
    cmd: wire.Command, received: int, code: str, message: str, status: ua.StatusCode | None = None
) -> wire.CommandReply:
    return wire.CommandReply(
        cmd.id,
        cmd.op,
        cmd.device,
        False,
        code,
        status=status.value if status is not None else wire.STATUS_GOOD,
        status_name=status.name if status is not None else "",
        error=message,
        received=received,
        done=wire.now_us(),
    )
