"""Settings pieces shared by the gateway and the platform, and one-line configuration errors."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator


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
    client_usernames: dict[str, str] = Field(
        default_factory=dict,
        description="Broker username per client-id prefix (longest prefix wins; others use `username`): "
        "with use_username_as_clientid every connection of a service needs its own username",
    )
    tls_ca_file: Path | None = Field(
        default=None,
        description="CA certificate (PEM) that signed the broker's; set, the connection uses TLS",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM), with tls_key_file"
    )
    tls_key_file: Path | None = Field(
        default=None, description="Client private key (PEM), with tls_cert_file"
    )
    keepalive: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive in seconds")
    reconnect_max_delay: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Cap of the jittered reconnect backoff, in seconds; at most this long after the peer "
        "is back, delivery resumes (the promise is within 3 s, so keep it well below)",
    )

    @model_validator(mode="after")
    def _tls_files(self) -> MqttSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_cert_file is not None and self.tls_ca_file is None:
            raise ValueError("a client certificate needs tls_ca_file (TLS is on only with a CA)")
        for path in (self.tls_ca_file, self.tls_cert_file, self.tls_key_file):
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} does not exist")
        return self

    def username_for(self, client_id: str) -> str | None:
        """The broker username of the connection with this client id."""
        matches = [p for p in self.client_usernames if client_id.startswith(p)]
        return self.client_usernames[max(matches, key=len)] if matches else self.username
