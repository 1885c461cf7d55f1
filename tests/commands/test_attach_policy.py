"""Attach's allowlist (issue 11, item 7): the endpoint's host, as an address or resolved, must be in
`commands.attach_allowed_networks` (default loopback and private ranges)."""

from __future__ import annotations

import asyncio

import pytest

from plantwire.config import ConfigError
from plantwire_platform.commands.command_settings import DEFAULT_ATTACH_NETWORKS
from plantwire_platform.commands.endpoint_policy import EndpointPolicy
from plantwire_platform.commands.errors import BadCommand, EndpointNotAllowed
from plantwire_platform.settings import PlatformSettings

DEFAULT = EndpointPolicy(DEFAULT_ATTACH_NETWORKS)


@pytest.mark.parametrize(
    "endpoint",
    [
        "opc.tcp://127.0.0.1:4840",
        "opc.tcp://10.1.2.3:4840/path",
        "opc.tcp://172.20.0.5",
        "opc.tcp://192.168.178.20:48010",
        "opc.tcp://[::1]:4840",
        "opc.tcp://[fd12:3456::1]:4840",
        "opc.tcp://localhost:4840",  # resolved (to loopback) and checked
    ],
)
async def test_plant_networks_are_allowed(endpoint: str) -> None:
    async with asyncio.timeout(10):
        await DEFAULT.check(endpoint)


@pytest.mark.parametrize(
    "endpoint",
    [
        "opc.tcp://8.8.8.8:4840",
        "opc.tcp://169.254.169.254:80",  # a cloud's metadata service: link-local is not in the default
        "opc.tcp://[2001:db8::1]:4840",
        "opc.tcp://[::ffff:8.8.8.8]:4840",  # an IPv4-mapped address is checked as the IPv4 one
    ],
)
async def test_other_hosts_are_403_with_a_clear_code(endpoint: str) -> None:
    async with asyncio.timeout(10):
        with pytest.raises(EndpointNotAllowed) as refused:
            await DEFAULT.check(endpoint)
    assert (refused.value.status, refused.value.code) == (403, "endpoint_not_allowed")
    assert (
        "PLANTWIRE_COMMANDS__ATTACH_ALLOWED_NETWORKS" in refused.value.message
        or "resolve" in refused.value.message
    )


async def test_an_endpoint_without_a_host_is_a_bad_request() -> None:
    with pytest.raises(BadCommand):
        await DEFAULT.check("opc.tcp://:4840")


async def test_the_setting_widens_or_narrows_the_list() -> None:
    async with asyncio.timeout(10):
        await EndpointPolicy(["203.0.113.0/24"]).check("opc.tcp://203.0.113.7:4840")
        with pytest.raises(EndpointNotAllowed):
            await EndpointPolicy(["10.0.0.0/8"]).check("opc.tcp://127.0.0.1:4840")


def test_a_bad_network_in_the_setting_stops_start_up() -> None:
    with pytest.raises(ConfigError, match="is not a network"):
        PlatformSettings.load(commands={"attach_allowed_networks": ["10.0.0.0/8", "not-a-net"]})
