"""Settings of the InfluxDB backend, apart from the backend so that settings never need influxdb-client."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class InfluxSettings(BaseModel):
    """Where the InfluxDB backend writes (PLANTWIRE_STORE__INFLUXDB__URL, ...)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(default="http://127.0.0.1:8086", description="InfluxDB 2 base URL")
    org: str = Field(default="plantwire", min_length=1, description="Organisation name")
    bucket: str = Field(default="plantwire", min_length=1, description="Bucket the points go to")
    token: SecretStr | None = Field(default=None, description="API token with read and write on the bucket")
    registry_path: Path = Field(
        default=Path("var/platform/influx-registry.sqlite"),
        description="Local SQLite file with the devices, tags and sequence numbers",
    )
    request_timeout_s: float = Field(default=10.0, gt=0, le=300, description="One HTTP request")
    write_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="A write retries this long before reporting an error"
    )
    startup_timeout_s: float = Field(
        default=30.0, ge=0, le=600, description="How long start-up waits for InfluxDB to answer"
    )
    max_lines_per_request: int = Field(default=5000, ge=1, le=100_000)
