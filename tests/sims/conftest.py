"""Fixtures for simulator tests."""

from __future__ import annotations

import pytest

from plantwire.broker import free_port


@pytest.fixture
def port() -> int:
    """A free loopback port for one simulated machine."""
    return free_port()
