"""Where attach may make a gateway connect: the endpoint's host must be in an allowed network.

Attach makes a gateway dial whatever host:port it is given, so without a check an admin token (or
someone who got one) could use the gateway to reach any host the gateway can (request forgery,
"SSRF"). The host is checked as an address, or resolved here and checked for every address it
resolves to (one outside is enough to refuse). Defaults: loopback, RFC 1918 private ranges, IPv6
unique local (settings.DEFAULT_ATTACH_NETWORKS).

Limit: the gateway resolves the name again when it connects; a DNS server that answers differently
the second time ("rebinding") is not stopped here. Use addresses, or a resolver you control.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit

from plantwire_platform.commands.errors import BadCommand, EndpointNotAllowed

RESOLVE_TIMEOUT_S: Final = 5.0
OPCUA_PORT: Final = 4840
_SETTING: Final = "PLANTWIRE_COMMANDS__ATTACH_ALLOWED_NETWORKS"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EndpointPolicy:
    def __init__(self, networks: Sequence[str]) -> None:
        self.networks: tuple[IpNetwork, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def allows_address(self, address: IpAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address.version == net.version and address in net for net in self.networks)

    async def check(self, endpoint: str) -> None:
        """Raise `EndpointNotAllowed` unless every address of the endpoint's host is allowed."""
        try:
            parts = urlsplit(endpoint)
            host, port = parts.hostname, parts.port
        except ValueError:
            host, port = None, None
        if not host:
            raise BadCommand("the endpoint must be an opc.tcp://host:port URL", "bad_endpoint")
        for address in await _addresses(host, port or OPCUA_PORT):
            if not self.allows_address(address):
                raise EndpointNotAllowed(
                    f"endpoint host {host!r} ({address}) is not in an allowed network; "
                    f"an admin can add its network to {_SETTING}"
                )


async def _addresses(host: str, port: int) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        raise EndpointNotAllowed(
            f"endpoint host {host!r} does not resolve, so it cannot be checked against {_SETTING}"
        ) from None
    out: list[IpAddress] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # a scoped IPv6 address: its scope is not the host
        try:
            out.append(ipaddress.ip_address(address))
        except ValueError:
            continue
    if not out:
        raise EndpointNotAllowed(f"endpoint host {host!r} resolves to no IP address")
    return out
