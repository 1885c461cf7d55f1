"""docs/configuration.md lists every setting of the platform and the gateway, so it cannot drift."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from plantwire_gateway.settings import DeviceConfig, GatewaySettings
from plantwire_platform.settings import PlatformSettings

DOC = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()


def env_names(model: type[BaseModel], prefix: str = "PLANTWIRE_") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            names += env_names(sub, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


@pytest.mark.parametrize("model", [PlatformSettings, GatewaySettings])
def test_every_environment_variable_is_documented(model: type[BaseModel]) -> None:
    missing = [name for name in env_names(model) if f"`{name}`" not in DOC]
    assert not missing, f"docs/configuration.md does not mention {missing}"


def test_every_device_key_is_documented() -> None:
    missing = [name for name in DeviceConfig.model_fields if f"`{name}`" not in DOC]
    assert not missing, f"docs/configuration.md does not mention device keys {missing}"
