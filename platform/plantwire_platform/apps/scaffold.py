"""`plantwire app new NAME`: a working app folder with a passing test, ready to edit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from plantwire_platform.apps.manifest import API_VERSION

_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

MANIFEST: Final = """\
id = "{id}"
name = "{title}"
version = "0.1.0"
api_version = {api}
entry = "app:{cls}"
description = "Average of the last values of each tag; an alarm when it passes a limit."
reads = ["*:Thermal/*"]   # device:tag patterns this app receives
writes = []               # device:tag patterns it may write, e.g. "cnc-*:Spindle/SpeedSetpoint"
calls = []                # device:method patterns it may call, e.g. "pump-*:Reset"

[config]
window = 5
limit = 60.0
"""

APP: Final = '''\
"""{title}: the average of the last `window` values of each tag; an alarm above `limit`."""

from __future__ import annotations

from collections import deque

from pydantic import BaseModel, Field

from plantwire_platform.apps import App, LivePoint


class Config(BaseModel):
    window: int = Field(default=5, ge=1)
    limit: float = 60.0


class {cls}(App[Config]):
    Config = Config

    async def start(self) -> None:
        self.recent: dict[tuple[str, str], deque[float]] = {{}}

    async def on_points(self, points: list[LivePoint]) -> None:
        for p in points:
            if isinstance(p.value, bool) or not isinstance(p.value, int | float):
                continue
            recent = self.recent.setdefault((p.device, p.tag), deque(maxlen=self.config.window))
            recent.append(float(p.value))
            average = sum(recent) / len(recent)
            self.ctx.emit(p.device, "Average", average, ts=p.ts)
            if average > self.config.limit:
                message = f"average {{average:.1f}} > limit"
                await self.ctx.raise_alarm(p.device, p.tag, "warning", message, ts=p.ts)
            else:
                await self.ctx.clear_alarm(p.device, p.tag, ts=p.ts)
'''

TEST: Final = '''\
"""Replays points through {cls} (no broker, no store) and checks what it did."""

import asyncio

from app import {cls}

from plantwire_platform.apps import Replay, point

S = 1_000_000


def test_average_and_alarm() -> None:
    async def scenario() -> Replay:
        async with Replay({cls}, config={{"window": 2, "limit": 60}}) as replay:
            temps = [50.0, 70.0, 80.0, 40.0]
            await replay.feed(point("cnc-1", "Thermal/Spindle", t, ts=i * S) for i, t in enumerate(temps))
            await replay.feed([point("cnc-1", "Spindle/Load", 99.0, ts=0)])  # not in reads: ignored
        return replay

    replay = asyncio.run(scenario())
    # Averages of the last two: 50, 60, 75, 60. Above 60 only at i=2: raised at 2 s, cleared at 3 s.
    assert [v for _, v in replay.derived("cnc-1", "Average")] == [50.0, 60.0, 75.0, 60.0]
    (alarm,) = replay.alarms
    assert (alarm.raised_at, alarm.cleared_at) == (2 * S, 3 * S)
'''


class ScaffoldError(Exception):
    pass


def new_app(name: str, folder: Path) -> Path:
    """Create `folder/name/` with manifest.toml, app.py and test_app.py; returns the app folder."""
    if not _NAME_RE.match(name):
        raise ScaffoldError(
            f"app name {name!r}: use lower case letters, digits and _, starting with a letter"
        )
    target = folder / name
    if target.exists():
        raise ScaffoldError(f"{target} already exists")
    cls = "".join(part.capitalize() for part in name.split("_") if part) or "MyApp"
    title = name.replace("_", " ").capitalize()
    target.mkdir(parents=True)
    (target / "manifest.toml").write_text(MANIFEST.format(id=name, title=title, cls=cls, api=API_VERSION))
    (target / "app.py").write_text(APP.format(title=title, cls=cls))
    (target / "test_app.py").write_text(TEST.format(cls=cls))
    return target
