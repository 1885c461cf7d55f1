"""Where the device sessions' messages go: Plantwire's JSON link, the Sparkplug link, or both.

A device session knows only `publish_retained` (its status and meta) and `notify_data` (new rows in
the outbox); `Northbound` hands each call to every link the gateway runs (`northbound` setting).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class RetainedSink(Protocol):
    def publish_retained(self, topic: str, payload: bytes) -> None: ...

    def notify_data(self) -> None: ...


class Northbound:
    def __init__(self, links: Sequence[RetainedSink]) -> None:
        self.links = tuple(links)

    def publish_retained(self, topic: str, payload: bytes) -> None:
        for link in self.links:
            link.publish_retained(topic, payload)

    def notify_data(self) -> None:
        for link in self.links:
            link.notify_data()
