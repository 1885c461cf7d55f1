"""The gateway's typed settings: a TOML file, overridden by `PLANTWIRE_*` variables, overridden by flags.

Built once in the command's `run()` and passed down; nothing imports a settings singleton.
Every problem becomes one `ConfigError` line that names the file and the field, so a bad
deployment stops at start-up instead of half-working.
"""

from __future__ import annotations

import re
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from plantwire import wire
from plantwire.config import ConfigError, MqttSettings, config_error
from plantwire.settings_env import PLATFORM_SECTIONS, check_env_names

_NODE_ID_RE = re.compile(r"^(ns=\d+;|nsu=[^;]+;)?[isgb]=.+$")


def is_node_id(text: str) -> bool:
    """A root given as an OPC UA NodeId string ("ns=2;s=cnc-1", "i=85") rather than a browse path."""
    return bool(_NODE_ID_RE.match(text))


def _check_id(kind: str, value: str) -> str:
    try:
        return wire.check_id(kind, value)
    except wire.WireError as err:
        raise ValueError(str(err)) from None


class DeviceConfig(BaseModel):
    """One OPC UA server (a machine) and which of its variables become tags."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Device id; a topic level, so letters, digits, '_', '.', '-'")
    endpoint: str = Field(description="opc.tcp://host:port[/path]")
    root: str = Field(
        default="",
        description="NodeId ('ns=2;s=cnc-1', 'i=85') or '/'-separated browse names below Objects "
        "('cnc-1'); empty means the Objects folder (without the Server object)",
    )
    include: list[str] = Field(default_factory=lambda: ["*"], description="fnmatch globs on tag names")
    exclude: list[str] = Field(default_factory=list, description="fnmatch globs on tag names")
    sampling_interval_ms: float = Field(default=0, ge=0, description="0 = every value the server writes")
    publishing_interval_ms: float = Field(default=500, gt=0, le=60_000)
    every_write: bool = Field(
        default=True,
        description="Report writes that repeat the same value (OPC UA trigger StatusValueTimestamp); "
        "false reports only changes of value or status",
    )
    queue_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Monitored-item queue on the server; 1 would keep only the latest value per interval",
    )
    # --- data: which clock stamps the values --------------------------------------------------
    timestamp: Literal["source", "server", "gateway"] = Field(
        default="source",
        description="Which time a value is stored at: 'source' (the device's source timestamp), 'server' "
        "(the OPC UA server's timestamp) or 'gateway' (when the gateway received it; for a PLC whose clock "
        "is wrong or unset). The measured clock offset is in the device's status",
    )

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return _check_id("device", value)

    @field_validator("endpoint")
    @classmethod
    def _valid_endpoint(cls, value: str) -> str:
        if not value.startswith("opc.tcp://") or len(value) <= len("opc.tcp://"):
            raise ValueError(f"endpoint {value!r} must start with opc.tcp://host:port")
        return value

    @field_validator("root")
    @classmethod
    def _valid_root(cls, value: str) -> str:
        value = value.strip()
        if value and not is_node_id(value) and any(not part for part in value.strip("/").split("/")):
            raise ValueError(f"root {value!r} is neither a NodeId nor a path of browse names")
        return value


class OutboxSettings(BaseModel):
    """The on-disk outbox that holds every batch until the broker acknowledged it."""

    model_config = ConfigDict(extra="forbid")

    max_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024 * 1024, description="When full, the oldest batches are dropped"
    )
    inflight: int = Field(
        default=200, ge=1, le=10_000, description="Data messages published but not yet acknowledged"
    )


class HealthSettings(BaseModel):
    """The gateway's own small HTTP endpoint: /healthz, /readyz and Prometheus /metrics."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="Address the health endpoint listens on")
    port: int | None = Field(default=None, ge=0, le=65535, description="Port; unset = no endpoint")


def _default_gateway_id() -> str:
    name = re.sub(r"[^A-Za-z0-9_.\-]", "-", socket.gethostname())[:61].strip("-.") or "local"
    return f"gw-{name}"


class GatewaySettings(BaseSettings):
    """Everything the gateway needs to run."""

    model_config = SettingsConfigDict(env_prefix="PLANTWIRE_", env_nested_delimiter="__", extra="forbid")

    id: str = Field(default_factory=_default_gateway_id, description="Gateway id (a topic level)")
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    data_dir: Path = Field(default=Path("var/gateway"), description="Where the outbox lives")
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    devices: list[DeviceConfig] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return _check_id("gateway", value)

    @model_validator(mode="after")
    def _unique_devices(self) -> GatewaySettings:
        seen: set[str] = set()
        for device in self.devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} appears more than once")
            seen.add(device.id)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def parse_device_flag(text: str) -> dict[str, str]:
    """`ID=opc.tcp://host:port[#root]` from the command line, as a device table."""
    device_id, sep, rest = text.partition("=")
    if not sep or not device_id:
        raise ConfigError(f"--device {text!r}: expected ID=opc.tcp://host:port[#root]")
    endpoint, _, root = rest.partition("#")
    return {"id": device_id, "endpoint": endpoint, "root": root}


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None


def load_settings(
    config: Path | None = None,
    overrides: dict[str, Any] | None = None,
    extra_devices: list[dict[str, str]] | None = None,
) -> GatewaySettings:
    """Build the settings: `overrides` (flags) > `PLANTWIRE_*` environment > the TOML file.

    `extra_devices` (from `--device`) are added to the file's devices. Raises `ConfigError`.
    """
    file_data = read_toml(config) if config is not None else {}
    if extra_devices:
        listed = file_data.get("devices", [])
        file_data = {**file_data, "devices": [*(listed if isinstance(listed, list) else []), *extra_devices]}
    source = str(config) if config is not None else "settings"
    check_env_names(GatewaySettings, shared=PLATFORM_SECTIONS)  # pydantic-settings ignores unknown names

    class _Loaded(GatewaySettings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, InitSettingsSource(settings_cls, file_data))

    try:
        loaded = _Loaded(**(overrides or {}))
    except ValidationError as err:
        raise config_error(err, source) from None
    except ValueError as err:  # pydantic-settings' own errors, e.g. an env value that is not JSON
        raise ConfigError(f"{source}: {err}".splitlines()[0]) from None
    return GatewaySettings.model_construct(
        **{name: getattr(loaded, name) for name in GatewaySettings.model_fields}
    )
