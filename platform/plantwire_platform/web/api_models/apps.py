"""Models of the app layer's routes: /api/apps (lifecycle), /api/alarms and each app's /apps/{id}/..."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from plantwire_platform.web.api_models.common import Count, RowId, Strict, Text, Time, TimeOrNull

AppId = Annotated[str, Field(min_length=1, max_length=64, examples=["oee"])]


class AppPath(Strict):
    app_id: AppId


class AppRoutePath(Strict):
    app_id: AppId
    path: str = Field(description="The route below the app, as the app registered it (e.g. metrics).")


class AlarmPath(Strict):
    alarm_id: RowId


class AlarmsQuery(Strict):
    state: Literal["active", "all"] = "active"
    device: Text | None = None
    app: Text | None = None


class Counters(Strict):
    points_in: Count
    emitted: Count
    alarms: Count
    errors: Count
    drops: Count


class App(Strict):
    id: str = Field(examples=["oee"])
    name: str
    version: str = Field(examples=["1.0.0"])
    api_version: int
    status: Literal["starting", "running", "disabled", "failed", "stopped"]
    enabled: bool
    error: str | None = Field(description="Why the app failed or is disabled.")
    counters: Counters
    routes: str = Field(examples=["/apps/oee/"])


class AppList(Strict):
    apps: list[App]


class Alarm(Strict):
    id: int
    app: str
    device: str
    tag: str
    severity: Literal["info", "warning", "critical"]
    message: str
    state: Literal["active", "cleared"]
    raised_at: Time
    cleared_at: TimeOrNull
    acked: bool
    acked_at: TimeOrNull
    acked_by: str | None


class AlarmList(Strict):
    alarms: list[Alarm]


class AppAnswer(Strict):
    """Whatever the app answers (GET metrics: its counters and own metrics)."""

    model_config = ConfigDict(extra="allow", frozen=True)
