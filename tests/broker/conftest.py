"""Fixtures for the broker tests: Plantwire's identities and a real Mosquitto with their passwords and ACL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from brokertest_support import Plant, start_broker

from plantwire.broker import MosquittoProcess
from plantwire.broker_auth import Identity, Role
from plantwire.pki import Pki, init_pki


@pytest.fixture
def plant() -> Plant:
    return Plant(
        Identity("platform", "platform-secret", Role.PLATFORM),
        Identity("gw1", "gw1-secret", Role.GATEWAY, "gw1"),
        Identity("gw2", "gw2-secret", Role.GATEWAY, "gw2"),
        Identity("viewer", "viewer-secret", Role.VIEWER),
    )


@pytest.fixture
def secured(tmp_path: Path, plant: Plant) -> Iterator[MosquittoProcess]:
    broker = start_broker(tmp_path, plant)
    yield broker
    broker.stop()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return init_pki(tmp_path / "pki", ["mosquitto"])
