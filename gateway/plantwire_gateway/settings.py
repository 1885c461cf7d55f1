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


SecurityPolicy = Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
SecurityMode = Literal["Sign", "SignAndEncrypt"]
TrustMode = Literal["explicit", "first-use"]
PASSWORD_ENV_PREFIX = "PLANTWIRE_DEVICE_PASSWORD__"
"""Without `password_file`, a device's password comes from `PLANTWIRE_DEVICE_PASSWORD__<ID>`."""


def password_env_name(device_id: str) -> str:
    """The environment variable holding a device's password: its id upper-cased, other than A-Z0-9 as '_'."""
    return PASSWORD_ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", device_id.upper())


def _has_credentials(endpoint: str) -> bool:
    authority = endpoint.partition("://")[2].split("/", 1)[0]
    return "@" in authority


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
    # --- security and identity (see docs/opcua.md) ---
    security_policy: SecurityPolicy = Field(default="None", description="OPC UA security policy")
    security_mode: SecurityMode | None = Field(
        default=None, description="Sign or SignAndEncrypt (default SignAndEncrypt when a policy is set)"
    )
    trust_server_certificate: TrustMode = Field(
        default="explicit",
        description="explicit: an unknown server certificate lands in pki/rejected until trusted; "
        "first-use: the first certificate seen is trusted (and any other one refused)",
    )
    username: str | None = Field(default=None, min_length=1, description="User name for the session")
    password_file: Path | None = Field(
        default=None,
        description="File holding the password (first line); without it the password comes from "
        "PLANTWIRE_DEVICE_PASSWORD__<DEVICE_ID>",
    )
    user_certificate: Path | None = Field(default=None, description="X.509 user certificate (DER or PEM)")
    user_private_key: Path | None = Field(default=None, description="Private key of user_certificate (PEM)")
    stall_timeout_s: float = Field(
        default=10.0,
        ge=2,
        le=600,
        description="A connection silent this long counts as lost; shorter stalls lose nothing",
    )
    session_timeout_s: float = Field(
        default=120.0,
        ge=5,
        le=3600,
        description="Session timeout asked of the server: how long it keeps the session, its "
        "subscription and queued values for a gateway that is away",
    )
    history_backfill: bool = Field(
        default=True,
        description="After the server lost the session, read the gap from its history "
        "(HistoryRead) where it keeps one",
    )

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return _check_id("device", value)

    @field_validator("endpoint")
    @classmethod
    def _valid_endpoint(cls, value: str) -> str:
        if _has_credentials(value):
            # Never echo the value: it holds a password.
            raise ValueError(
                "endpoint must not carry credentials (user:pass@); set username and password_file instead"
            )
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

    @model_validator(mode="after")
    def _valid_security(self) -> DeviceConfig:
        if self.security_policy == "None" and self.security_mode is not None:
            raise ValueError("security_mode needs a security_policy other than None")
        if (self.user_certificate is None) != (self.user_private_key is None):
            raise ValueError("user_certificate and user_private_key go together")
        if self.user_certificate is not None and self.username is not None:
            raise ValueError("give either username or user_certificate, not both")
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file needs a username")
        for path in (self.password_file, self.user_certificate, self.user_private_key):
            if path is not None and not path.is_file():
                raise ValueError(f"{path}: file not found")
        return self

    @property
    def mode(self) -> str:
        """The effective message security mode: None, Sign or SignAndEncrypt."""
        if self.security_policy == "None":
            return "None"
        return self.security_mode or "SignAndEncrypt"


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


Northbound = Literal["plantwire", "sparkplug", "both"]


class SparkplugEdgeSettings(BaseModel):
    """The gateway as a Sparkplug B edge node (used when `northbound` is sparkplug or both)."""

    model_config = ConfigDict(extra="forbid")

    group_id: str = Field(default="plantwire", description="Sparkplug group id of this edge node")
    edge_node_id: str | None = Field(
        default=None,
        description="Sparkplug edge node id; unset = the gateway id (what the broker ACL allows)",
    )
    primary_host_id: str | None = Field(
        default=None,
        description="Host application whose STATE gates the births (NBIRTH only while it is online); "
        "unset = publish without waiting for a host",
    )
    data_qos: Literal[0, 1] = Field(
        default=1,
        description="QoS of DDATA: 1 keeps the outbox's guarantee (a batch leaves the outbox on PUBACK); "
        "0 is what the specification prescribes (a batch leaves once written to the socket)",
    )

    @field_validator("group_id", "edge_node_id", "primary_host_id")
    @classmethod
    def _valid_sparkplug_id(cls, value: str | None) -> str | None:
        if value is not None and (not value or set(value) & set("+/#")):
            raise ValueError(f"{value!r} must be a non-empty string without '+', '/' or '#'")
        return value


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
    northbound: Northbound = Field(
        default="plantwire",
        description="What the gateway publishes: the JSON wire, Sparkplug B or both (docs/sparkplug.md)",
    )
    sparkplug: SparkplugEdgeSettings = Field(default_factory=SparkplugEdgeSettings)
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
