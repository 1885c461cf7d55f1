"""Structured logging for every Plantwire process.

Events are short snake_case names with fields (``log.info("mqtt_connected", host=h)``).
A terminal gets readable lines; deployments set ``PLANTWIRE_LOG_FORMAT=json``.
Logs go to stderr so that a command's own output on stdout stays clean.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

import structlog

LogFormat = Literal["console", "json"]


def configure_logging(level: str | None = None, fmt: LogFormat | None = None) -> None:
    level_name = (level or os.environ.get("PLANTWIRE_LOG_LEVEL", "info")).upper()
    numeric = logging.getLevelName(level_name)
    if not isinstance(numeric, int):
        numeric = logging.INFO
    chosen = fmt or os.environ.get("PLANTWIRE_LOG_FORMAT")
    if chosen not in ("console", "json"):
        chosen = "console" if sys.stderr.isatty() else "json"

    renderer: structlog.typing.Processor
    if chosen == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (asyncua, aiohttp, amqtt) log through the standard library; keep only their warnings.
    logging.basicConfig(
        level=max(numeric, logging.WARNING),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for noisy in ("asyncua", "amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.ERROR))
    # A device that goes away makes asyncua log a traceback; the gateway reports it as an event.
    logging.getLogger("asyncua.client.ua_session").setLevel(logging.CRITICAL)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
