"""Shapes every part of the API shares: the error answer, times, values, ids, the strict base model."""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from plantwire import wire

TIME_EXAMPLE: Final = "2026-11-24T11:20:00.123456Z"
MAX_ID: Final = 2**63 - 1
"""Row ids (alarms, audit entries) are signed 64-bit integers in the store."""
MAX_TEXT: Final = 256
"""Query and path texts (device ids, tag names, filters) are at most this long."""
ID_PATTERN: Final = wire.ID_PATTERN
COMMAND_ID_PATTERN: Final = wire.COMMAND_ID_PATTERN


class Strict(BaseModel):
    """Unknown fields are refused (a typo must not pass unnoticed); every field says what it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Time = Annotated[str, Field(json_schema_extra={"format": "date-time", "examples": [TIME_EXAMPLE]})]
TimeOrNull = Annotated[
    str | None, Field(json_schema_extra={"format": "date-time", "examples": [TIME_EXAMPLE]})
]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
"""A non-empty query or path text."""
DeviceId = Annotated[str, Field(pattern=ID_PATTERN, examples=["press-1"])]


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError("must be a number, boolean, string or null")


ScalarValue = Annotated[
    Any,
    AfterValidator(_scalar),
    WithJsonSchema(
        {"type": ["number", "boolean", "string", "null"], "description": "A number, boolean, string or null."}
    ),
]
"""A scalar as given (an integer stays an integer: a method's Int32 argument must not become 5.0)."""
AnyJson = Annotated[
    Any,
    Field(
        description="Any JSON value: a scalar, an array or an object (arrays and structures nest at most "
        f"{wire.MAX_NESTING} deep)."
    ),
]
Count = Annotated[int, Field(ge=0)]
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]


class ErrorDetail(Strict):
    status: int = Field(ge=400, le=599, examples=[400])
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", examples=["invalid_parameter", "unknown_device"])
    message: str = Field(examples=["every='5x' is not a duration: use a whole number followed by ..."])


class Error(Strict):
    """Every error, whatever the endpoint and status."""

    error: ErrorDetail


class NoQuery(Strict):
    """An endpoint without query parameters (any one given is refused with 400)."""


class DevicePath(Strict):
    device: Text = Field(examples=["press-1"])
