"""Settings of the PostgreSQL backend, apart from the backend so that settings never need asyncpg."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class PostgresSettings(BaseModel):
    """Where the PostgreSQL backend writes (PLANTWIRE_STORE__POSTGRESQL__DSN, ...)."""

    model_config = ConfigDict(extra="forbid")

    dsn: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5432/plantwire"),
        description="Connection string (postgresql://user:password@host:port/database); secret, never logged",
    )
    schema_name: str = Field(
        default="public",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Schema holding Plantwire's tables (created if missing)",
    )
    partition: Literal["day", "week"] = Field(
        default="day", description="Width of one time partition of the points table"
    )
    partitions_ahead: int = Field(
        default=2, ge=0, le=60, description="Partitions created ahead of today at start-up"
    )
    timescaledb: bool = Field(
        default=True, description="Use a TimescaleDB hypertable with compression when the extension exists"
    )
    pool_max: int = Field(default=8, ge=2, le=100, description="Connections in the pool")
    request_timeout_s: float = Field(default=30.0, gt=0, le=600, description="One store call")
    startup_timeout_s: float = Field(
        default=30.0, ge=0, le=600, description="How long start-up waits for PostgreSQL to answer"
    )
