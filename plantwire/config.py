"""Settings pieces shared by the gateway and the platform, and one-line configuration errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError


class ConfigError(Exception):
    """Bad configuration: the process stops at start-up with this one-line message."""


def config_error(err: ValidationError, source: str) -> ConfigError:
    """Turn a pydantic error into one line that names the field, e.g. ``devices[1].endpoint``."""
    first = err.errors()[0]
    path = ""
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    more = len(err.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return ConfigError(f"{source}: {path or 'value'}: {first['msg']}{tail}")


class MqttSettings(BaseModel):
    """How to reach the MQTT broker."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    keepalive: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive in seconds")
    reconnect_max_delay: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Cap of the jittered reconnect backoff, in seconds; at most this long after the peer "
        "is back, delivery resumes (the promise is within 3 s, so keep it well below)",
    )
