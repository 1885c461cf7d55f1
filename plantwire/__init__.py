"""Plantwire: plant-floor machines (OPC UA) to an industrial platform over MQTT."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("plantwire")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
