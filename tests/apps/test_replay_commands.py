"""An app's writes and calls under `Replay`: recorded when the manifest allows them, refused otherwise."""

from __future__ import annotations

import asyncio

from plantwire_platform.apps import App, LivePoint, Manifest, PermissionDenied, Replay, point


class Writer(App):
    async def on_points(self, points: list[LivePoint]) -> None:
        for p in points:
            self.ctx.metrics["reply"] = await self.ctx.write(p.device, "Setpoint", 1.5)
            await self.ctx.call(p.device, "Reset", 7)
            try:
                await self.ctx.write(p.device, "Other", 0)
            except PermissionDenied:
                self.ctx.metrics["refused"] = 1


MANIFEST = Manifest(
    id="writer",
    name="writer",
    version="1.0.0",
    api_version=1,
    reads=("*:T",),
    writes=("*:Setpoint",),
    calls=("*:Reset",),
)


async def test_replay_records_commands_and_hands_back_the_result() -> None:
    async with asyncio.timeout(10), Replay(Writer, manifest=MANIFEST, command_result="done") as replay:
        await replay.feed([point("dev", "T", 1.0, ts=1)])
    assert replay.commands == [("write", "dev", "Setpoint", (1.5,)), ("call", "dev", "Reset", (7,))]
    assert replay.ctx.metrics == {"reply": "done", "refused": 1}
    assert [(a.action, a.target, a.allowed) for a in replay.audit] == [
        ("write", "Setpoint", True),
        ("call", "Reset", True),
        ("write", "Other", False),
    ]
