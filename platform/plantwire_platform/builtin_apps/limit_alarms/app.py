"""Limit alarms: per-tag high/low limits with hysteresis and an on-delay.

A value beyond a limit for at least `delay_s` (measured in source time) raises the alarm; it
clears once the value is back inside the limit by more than `hysteresis` (no delay on clearing).
One alarm per (device, tag): high and low share it, the message says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plantwire_platform.apps import App, LivePoint

US = 1_000_000


class Limit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: str = "*"
    tag: str
    high: float | None = None
    low: float | None = None
    hysteresis: float = Field(default=0.0, ge=0)
    delay_s: float = Field(default=0.0, ge=0)
    severity: Literal["info", "warning", "critical"] = "warning"

    @model_validator(mode="after")
    def _some_limit(self) -> Limit:
        if self.high is None and self.low is None:
            raise ValueError(f"limit on {self.tag!r} needs high, low or both")
        if self.high is not None and self.low is not None and self.low >= self.high:
            raise ValueError(f"limit on {self.tag!r}: low {self.low} must be below high {self.high}")
        return self


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limits: list[Limit] = []


@dataclass
class _State:
    pending_since: int | None = None
    active: bool = False


LimitAlarmsConfig = Config


class LimitAlarms(App[Config]):
    Config = Config

    @classmethod
    def subscriptions(cls, config: LimitAlarmsConfig) -> tuple[str, ...]:
        return tuple(f"{limit.device}:{limit.tag}" for limit in config.limits)

    async def start(self) -> None:
        self._state: dict[tuple[str, str], _State] = {}
        # Resume after a restart: alarms this app left active stay ours to clear.
        for alarm in await self.ctx.active_alarms():
            self._state[(alarm.device, alarm.tag)] = _State(active=True)

    def _limit(self, device: str, tag: str) -> Limit | None:
        for limit in self.config.limits:
            if limit.tag == tag and fnmatchcase(device, limit.device):
                return limit
        return None

    async def on_points(self, points: list[LivePoint]) -> None:
        for p in points:
            limit = self._limit(p.device, p.tag)
            if limit is None or isinstance(p.value, bool) or not isinstance(p.value, int | float):
                continue
            await self._check(limit, p.device, p.tag, float(p.value), p.ts)

    async def _check(self, limit: Limit, device: str, tag: str, v: float, ts: int) -> None:
        state = self._state.setdefault((device, tag), _State())
        over = limit.high is not None and v > limit.high
        under = limit.low is not None and v < limit.low
        if not state.active:
            if not (over or under):
                state.pending_since = None
                return
            if state.pending_since is None:
                state.pending_since = ts
            if ts - state.pending_since >= limit.delay_s * US:
                side, bound = ("above high", limit.high) if over else ("below low", limit.low)
                await self.ctx.raise_alarm(
                    device, tag, limit.severity, f"{tag} = {v:g} {side} limit {bound:g}", ts=ts
                )
                state.active, state.pending_since = True, None
            return
        back_in = (limit.high is None or v < limit.high - limit.hysteresis) and (
            limit.low is None or v > limit.low + limit.hysteresis
        )
        if back_in:
            await self.ctx.clear_alarm(device, tag, ts=ts)
            state.active = False
