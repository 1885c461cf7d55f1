"""Models of device ownership: an admin moves a device to another gateway (`POST .../move`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from plantwire_platform.web.api_models.common import ID_PATTERN, Strict

GatewayId = Annotated[str, Field(pattern=ID_PATTERN, examples=["line-b"])]


class MoveBody(Strict):
    gateway: GatewayId = Field(description="The gateway that owns the device from now on.")


class MoveResult(Strict):
    device: str = Field(examples=["press-1"])
    gateway: str = Field(examples=["line-b"], description="The device's owner now.")
    previous: str = Field(examples=["line-a"], description="Its owner before the move.")
