"""Optional dependencies ("extras" in pyproject.toml), imported only where they are used.

`pip install plantwire` brings what the services need; the demo's embedded broker (`demo`) and the
benchmarks' process figures (`bench`) come with their extra. Code that needs one imports it through
`import_extra`, so a missing extra is one line naming what to install, not a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message says which extra brings it."""


def missing_extra_message(package: str, extra: str, needed_by: str) -> str:
    return (
        f"{needed_by} needs the Python package {package!r}, which is not installed: "
        f"pip install 'plantwire[{extra}]' (./dev installs every extra)"
    )


def import_extra(module: str, extra: str, needed_by: str) -> ModuleType:
    """Import `module` from the optional dependency group `extra`, or raise MissingExtraError."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        package = (err.name or module).partition(".")[0]
        raise MissingExtraError(missing_extra_message(package, extra, needed_by)) from None
