"""The platform's one settings object: built once at start-up from PLANTWIRE_* variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from plantwire.config import MqttSettings, config_error
from plantwire_platform.store_influx_settings import InfluxSettings


class HttpSettings(BaseModel):
    """Where the REST API and web page listen."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)


class StoreSettings(BaseModel):
    """Where points are stored, and the ingest writer's commit cadence."""

    backend: Literal["sqlite", "influxdb"] = Field(default="sqlite", description="Where points are stored")
    influxdb: InfluxSettings = Field(default_factory=InfluxSettings)
    path: Path = Path("var/platform/plantwire.sqlite")
    commit_interval_ms: int = Field(
        default=100, ge=1, le=60_000, description="Longest time a received message waits for its commit"
    )
    max_batch_points: int = Field(
        default=50_000, ge=1, description="Commit early once this many points are waiting"
    )
    queue_max_messages: int = Field(
        default=5000, ge=1, description="Decoded messages waiting for the writer; a full queue slows MQTT"
    )


class PlatformSettings(BaseSettings):
    """Everything the platform service reads from its environment (PLANTWIRE_MQTT__HOST, ...)."""

    model_config = SettingsConfigDict(env_prefix="PLANTWIRE_", env_nested_delimiter="__")

    mqtt: MqttSettings = MqttSettings()
    client_id: str = Field(
        default="plantwire-platform",
        min_length=1,
        max_length=23,
        description="MQTT client id; fixed, because the broker keeps this persistent session's messages",
    )
    http: HttpSettings = HttpSettings()
    store: StoreSettings = StoreSettings()

    @classmethod
    def load(cls, **overrides: Any) -> PlatformSettings:
        """Read the environment (plus explicit overrides); a bad value becomes a one-line ConfigError."""
        try:
            return cls(**overrides)
        except ValidationError as err:
            raise config_error(err, "environment") from err
