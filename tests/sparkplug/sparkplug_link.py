"""Test-side I/O for the sans-I/O Sparkplug sessions: a real paho client on a real Mosquitto,
and helper processes that run pysparkplug from its own virtualenv."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from plantwire.config import MqttSettings
from plantwire.mqtt_control import new_client
from plantwire.sparkplug.topics import Outgoing

PEERS = Path(__file__).parent / "peers"
WAIT = 20.0


class Link:
    """A paho client whose messages go to `handler`; what `handler` returns is published."""

    def __init__(
        self,
        port: int,
        client_id: str,
        handler: Callable[[str, bytes], Iterable[Outgoing]],
        will: Outgoing | None = None,
    ) -> None:
        self.client = new_client(MqttSettings(port=port), client_id, clean_session=True)
        if will is not None:
            self.client.will_set(will.topic, will.payload, will.qos, will.retain)
        self._handler = handler
        self._subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self._port = port

    def start(self, subscriptions: list[str]) -> None:
        self.client.connect("127.0.0.1", self._port)
        self.client.loop_start()
        self.client.subscribe([(s, 1) for s in subscriptions])
        assert self._subscribed.wait(WAIT), "no SUBACK from the broker"

    def publish(self, outs: Iterable[Outgoing]) -> None:
        for o in outs:
            self.client.publish(o.topic, o.payload, o.qos, o.retain).wait_for_publish(WAIT)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        for o in self._handler(msg.topic, bytes(msg.payload)):  # in paho's thread: never wait here
            self.client.publish(o.topic, o.payload, o.qos, o.retain)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Peer:
    """A helper script under peers/ run by pysparkplug's interpreter; JSON lines on stdout."""

    def __init__(self, python: Path, script: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(python), str(PEERS / script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def next(self, event: str | None = None, timeout: float = WAIT) -> dict[str, Any]:
        """The next line (of `event`, skipping others), within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
                raise AssertionError(f"peer sent no {event or 'line'} within {timeout}s {err}") from None
            if "error" in line:
                raise AssertionError(f"peer failed: {line['error']}")
            if event is None or line.get("event") == event:
                return line

    def kill(self) -> None:
        """SIGKILL: the broker then sends the peer's Will."""
        self.proc.kill()
        self.proc.wait(WAIT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)
