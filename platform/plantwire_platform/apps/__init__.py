"""Plugin apps: small async Python programs that act on live plant data inside the platform.

An app is a folder (or an installed package) holding `manifest.toml` and a module with an `App`
subclass. See docs/apps.md. The public API for app authors is re-exported here.
"""

from plantwire_platform.apps.api import App, AppContext, NoConfig, PermissionDenied
from plantwire_platform.apps.manifest import API_VERSION, Manifest, ManifestError
from plantwire_platform.apps.replay import Replay, point, points_from_csv
from plantwire_platform.commands.errors import (
    BadCommand,
    CommandConflict,
    CommandError,
    CommandsUnavailable,
    CommandTimedOut,
    DeviceFailed,
    InvalidCommand,
    NotWritable,
    UnknownTarget,
    UnsupportedCommand,
)
from plantwire_platform.commands.service import CallDone, Receipt, WriteDone
from plantwire_platform.commands.sparkplug_writes import DcmdDone
from plantwire_platform.identifiers.catalog import HandleExists
from plantwire_platform.identifiers.registry import IdentifierRegistry
from plantwire_platform.ingest.live_bus import LivePoint

__all__ = [
    "API_VERSION",
    "App",
    "AppContext",
    "BadCommand",
    "CallDone",
    "CommandConflict",
    "CommandError",
    "CommandTimedOut",
    "CommandsUnavailable",
    "DcmdDone",
    "DeviceFailed",
    "HandleExists",
    "IdentifierRegistry",
    "InvalidCommand",
    "LivePoint",
    "Manifest",
    "ManifestError",
    "NoConfig",
    "NotWritable",
    "PermissionDenied",
    "Receipt",
    "Replay",
    "UnknownTarget",
    "UnsupportedCommand",
    "WriteDone",
    "point",
    "points_from_csv",
]
