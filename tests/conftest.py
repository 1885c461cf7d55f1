"""Fixtures shared by every test: a real Mosquitto on a free loopback port, unique ids."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantwire.broker import MosquittoProcess, free_port, mosquitto_path
from plantwire.logs import configure_logging

configure_logging("warning", "console")


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoProcess]:
    """One real Mosquitto for the whole session, with Plantwire's zero-loss configuration.

    Tests that stop or restart a broker use `own_mosquitto` instead.
    """
    if mosquitto_path() is None:
        pytest.fail("mosquitto is not installed; .ci/run installs it (apt-get install mosquitto)")
    broker = MosquittoProcess(port=free_port(), data_dir=tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def module_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoProcess]:
    """A broker of one test module's own. The session's holds every earlier test's retained metas
    and statuses, which a new platform ingests first (in shared commits, but every one) and whose
    devices it must own: a module whose platforms must answer quickly takes this one
    (`mosquitto = module_mosquitto`)."""
    broker = MosquittoProcess(port=free_port(), data_dir=tmp_path_factory.mktemp("mosquitto-module"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A Mosquitto for this test alone, which the test may stop, kill and start again."""
    broker = MosquittoProcess(port=free_port(), data_dir=tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def unique_id() -> str:
    """A short id for gateways, devices and client ids that no other test uses."""
    return "t" + uuid.uuid4().hex[:10]
