"""The platform's one settings object: built once at start-up from PLANTWIRE_* variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from plantwire.config import ConfigError, MqttSettings, config_error
from plantwire.settings_env import GATEWAY_SECTIONS, check_env_names
from plantwire_platform.auth.auth_database import AuthDatabase
from plantwire_platform.auth.auth_settings import AuthSettings
from plantwire_platform.commands.command_settings import AuditSettings, CommandSettings
from plantwire_platform.identifiers.settings import IdentifierSettings
from plantwire_platform.store.influx.settings import InfluxSettings
from plantwire_platform.store.postgresql.settings import PostgresSettings
from plantwire_platform.store.retention import RetentionSettings
from plantwire_platform.store.seq_tracking import DEFAULT_MAX_SEQ_JUMP


class HttpSettings(BaseModel):
    """Where the REST API and web page listen."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)


class StoreSettings(BaseModel):
    """Where points are stored, and the ingest writer's commit cadence."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["sqlite", "influxdb", "postgresql"] = Field(
        default="sqlite", description="Where points are stored"
    )
    influxdb: InfluxSettings = Field(default_factory=InfluxSettings)
    postgresql: PostgresSettings = Field(default_factory=PostgresSettings)
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
    retention: RetentionSettings = Field(default_factory=RetentionSettings)


class IngestSettings(BaseModel):
    """How this platform process takes its share of the data (docs/scaling.md)."""

    model_config = ConfigDict(extra="forbid")

    shared_group: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="MQTT shared-subscription group: workers of one group split the data messages",
    )
    max_future_s: float = Field(
        default=300.0,
        ge=0,
        description="Values stamped further ahead of the platform's clock are rejected (counted, not stored)",
    )
    max_seq_jump: int = Field(
        default=DEFAULT_MAX_SEQ_JUMP,
        ge=1,
        description="A data message's seq further ahead of the device's last counts as a jump, not gaps",
    )


class SparkplugHostSettings(BaseModel):
    """The platform as a Sparkplug B host application (docs/sparkplug.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="Ingest Sparkplug B edge nodes (spBv1.0/#) too")
    host_id: str = Field(
        default="plantwire",
        pattern=r"^[^+/#]{1,64}$",
        description="Host application id: its STATE topic spBv1.0/STATE/<host_id>; edge nodes with this "
        "primary host id publish only while the platform is online",
    )


class AppsSettings(BaseModel):
    """The app host: where apps are found, which run, their config and isolation limits (docs/apps.md)."""

    model_config = ConfigDict(extra="forbid")

    path: Path | None = Field(default=Path("apps"), description="Folder of app folders (missing: none)")
    builtin: bool = Field(default=True, description="Load the apps shipped with the platform")
    enabled: list[str] | None = Field(default=None, description="Ids of the apps to start; None: all")
    disabled: list[str] = Field(default_factory=list, description="Ids of apps not to start")
    config: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per-app config")
    queue_max_points: int = Field(default=10_000, ge=1, description="Live points waiting per app")
    hook_timeout_s: float = Field(default=30.0, gt=0, description="Longest an app hook may take")
    block_budget_ms: int = Field(default=200, ge=1, description="Longest an app may hold the event loop")
    block_strikes: int = Field(default=3, ge=1, description="Budget overruns before the app is stopped")
    restart_first_s: float = Field(default=1.0, gt=0, description="First restart delay of a failed app")
    restart_max_s: float = Field(default=60.0, gt=0, description="Cap of the doubling restart delay")


class PlatformSettings(BaseSettings):
    """Everything the platform service reads from its environment (PLANTWIRE_MQTT__HOST, ...)."""

    model_config = SettingsConfigDict(env_prefix="PLANTWIRE_", env_nested_delimiter="__", extra="forbid")

    mqtt: MqttSettings = MqttSettings()
    client_id: str = Field(
        default="plantwire-platform",
        min_length=1,
        max_length=23,
        description="MQTT client id; fixed, because the broker keeps this persistent session's messages",
    )
    http: HttpSettings = HttpSettings()
    store: StoreSettings = StoreSettings()
    ingest: IngestSettings = IngestSettings()
    sparkplug_host: SparkplugHostSettings = SparkplugHostSettings()
    apps: AppsSettings = AppsSettings()
    auth: AuthSettings = AuthSettings()
    commands: CommandSettings = CommandSettings()
    audit: AuditSettings = AuditSettings()

    identifiers: IdentifierSettings = Field(default_factory=IdentifierSettings)

    @classmethod
    def load(cls, **overrides: Any) -> PlatformSettings:
        """Read the environment (plus explicit overrides); a bad value becomes a one-line ConfigError.

        An unknown PLANTWIRE_* variable is one too (pydantic-settings alone would ignore it).
        """
        check_env_names(cls, shared=GATEWAY_SECTIONS)
        try:
            return cls(**overrides)
        except ValidationError as err:
            raise config_error(err, "environment") from err
        except SettingsError as err:  # e.g. PLANTWIRE_HTTP=x: a section given a value that is not JSON
            raise ConfigError(f"environment: {err}") from err


def shared_auth_database(settings: PlatformSettings) -> AuthDatabase | None:
    """Where tokens, sessions and login links are shared by replicas: the PostgreSQL store's schema;
    None with the SQLite and InfluxDB stores (tokens in the data dir, sessions in memory)."""
    if settings.store.backend != "postgresql":
        return None
    pg = settings.store.postgresql
    return AuthDatabase(pg.dsn, pg.schema_name, pg.request_timeout_s, pg.startup_timeout_s)


def environment_auth_database() -> AuthDatabase | None:
    """`shared_auth_database` of the settings in this process's environment (the CLI's, the demo's):
    None unless PLANTWIRE_STORE__BACKEND selects PostgreSQL; a bad setting raises ConfigError."""
    if os.environ.get("PLANTWIRE_STORE__BACKEND", "").strip().lower() != "postgresql":
        return None
    return shared_auth_database(PlatformSettings.load())
