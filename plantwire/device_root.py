"""`plantwire attach` without `--root`: find the machine's object on a one-machine OPC UA server.

A simulator's port serves one machine, the object ns=2;s=NAME under Objects (so do most single
machines' own servers). Its tags are named below that object ("Hydraulics/Flow"); browsed from
Objects they would carry the machine's name ("pump-1/Hydraulics/Flow"). So when Objects holds
exactly one object besides the standard ones (namespace 0: Server, Aliases, ...), that object is the
default root. The look goes from where the command runs; the gateway checks the root again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

PROBE_TIMEOUT_S: Final = 5.0


@dataclass(frozen=True)
class RootGuess:
    """The root found (a NodeId string), or None with the reason none was chosen."""

    root: str | None
    reason: str


async def _guess(endpoint: str) -> RootGuess:
    from asyncua import Client, ua

    client = Client(endpoint, timeout=PROBE_TIMEOUT_S)
    client.session_timeout = 60_000  # ms; the look takes one browse
    async with client:
        children = await client.nodes.objects.get_children(nodeclassmask=ua.NodeClass.Object)
    own = [c.nodeid for c in children if c.nodeid.NamespaceIndex != 0]
    if len(own) == 1:
        return RootGuess(own[0].to_string(), "the only object under Objects")
    return RootGuess(None, f"{len(own)} objects under Objects")


def guess_root(endpoint: str) -> RootGuess:
    """Look at the endpoint (anonymous, no security) within PROBE_TIMEOUT_S; never raises."""
    from asyncua import ua

    async def bounded() -> RootGuess:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            return await _guess(endpoint)

    try:
        return asyncio.run(bounded())
    except (OSError, TimeoutError, ua.UaError) as err:
        return RootGuess(None, f"cannot browse it from here ({type(err).__name__}: {err})")
