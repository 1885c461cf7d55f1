"""Why a command did not succeed: one exception class per kind of failure, each with a stable code.

REST clients and apps see the same errors. An app catches them by class (`except InvalidCommand`)
or reads `code` (e.g. ``"out_of_range"``); the web layer answers with `status` and the same code.
`status` is also what the audit keeps for the command (``http_status``), so it is defined here,
once, next to the kind of failure it describes.
"""

from __future__ import annotations

from typing import ClassVar, Final

MAX_MESSAGE: Final = 500
"""An error message is at most this long: one quoting a 900 KB value must not answer with it."""


def shortened(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[: MAX_MESSAGE - 40]}…[{len(message) - MAX_MESSAGE + 40} more characters]"


DEVICE_FAILURE_CODES: Final[dict[str, str]] = {
    "device_refused": "the device answered with a Bad OPC UA status",
    "device_unreachable": "the endpoint cannot be reached (or the device is not connected)",
    "security_rejected": "the server does not offer the security policy/mode asked for, or refused it",
    "certificate_untrusted": "one side does not trust the other's certificate (trust the server's on the "
    "gateway: `plantwire gateway pki list`, then `plantwire gateway pki trust`)",
    "identity_rejected": "the user name/password or user certificate was refused, or is required",
    "too_many_operations": "the server refused a request as too large, or is at a session limit",
    "command_interrupted": "the gateway stopped while running the command",
    "gateway_error": "the gateway failed in another way (its message says how)",
}
"""Codes of `DeviceFailed` (HTTP 502): what the gateway or the device reported, and what it means."""


class CommandError(Exception):
    """A command the platform refused, could not deliver, or the device did not carry out."""

    status: ClassVar[int] = 502
    default_code: ClassVar[str] = "command_failed"

    def __init__(self, message: str, code: str | None = None) -> None:
        message = shortened(message)
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class BadCommand(CommandError):
    """The request itself is malformed (a missing tag name, args that are not a list, ...)."""

    status = 400
    default_code = "bad_request"


class NotWritable(CommandError):
    """The tag is read-only (its meta says `writable: false`)."""

    status = 403
    default_code = "tag_not_writable"


class EndpointNotAllowed(CommandError):
    """An attach endpoint outside `commands.attach_allowed_networks` (or a host that does not resolve)."""

    status = 403
    default_code = "endpoint_not_allowed"


class UnknownTarget(CommandError):
    """No such device, tag, method, node or gateway (`code` says which)."""

    status = 404
    default_code = "unknown_device"


class CommandConflict(CommandError):
    """The command clashes with what exists: a device id taken, a device configured in a file."""

    status = 409
    default_code = "duplicate_device"


class InvalidCommand(CommandError):
    """A value of the wrong type (`invalid_value`) or outside the tag's range (`out_of_range`)."""

    status = 422
    default_code = "invalid_value"


class UnsupportedCommand(CommandError):
    """The device's protocol has no such command: a method call or browse of a device behind a
    Sparkplug B edge node (Sparkplug knows only metric writes), or a write to an edge node's own
    metrics (code `not_supported`)."""

    status = 422
    default_code = "not_supported"


class DeviceFailed(CommandError):
    """The device refused the command or could not be reached (`code` says which, one of
    `DEVICE_FAILURE_CODES`: a security, certificate or identity refusal is told apart from an
    unreachable endpoint, so that the answer says what to fix)."""

    status = 502
    default_code = "device_refused"


class CommandsUnavailable(CommandError):
    """The platform cannot send now: no broker connection, or the gateway is offline."""

    status = 503
    default_code = "broker_unavailable"


class CommandTimedOut(CommandError):
    """No reply in time; the command may still run (retry with the same id to learn its outcome)."""

    status = 504
    default_code = "command_timeout"
