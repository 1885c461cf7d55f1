"""Structures (ExtensionObjects) decoded to fields: the server's own data type definitions, loaded once.

asyncua decodes a structure whose definition it knows into a dataclass (`ua_values` turns that
into a JSON object); for the others it keeps the encoded body. `load_structures` asks the server
for the definitions it publishes (OPC UA 1.04 DataTypeDefinition attributes). A server that
publishes none, or refuses, costs nothing but a log line: its structures stay encoded.
"""

from __future__ import annotations

import asyncio
from typing import Final

from asyncua import Client, ua

from plantwire.logs import get_logger

log = get_logger(__name__)

LOAD_TIMEOUT: Final = 10.0


async def load_structures(client: Client, device_id: str) -> int:
    """Load the server's structure and enumeration definitions; how many types were added."""
    try:
        async with asyncio.timeout(LOAD_TIMEOUT):
            loaded = await client.load_data_type_definitions()
    except (ua.UaError, TimeoutError, ValueError, KeyError, AttributeError, SyntaxError, NameError) as err:
        log.info(
            "structure_definitions_unavailable", device_id=device_id, error=f"{type(err).__name__}: {err}"
        )
        return 0
    return len(loaded or {})
