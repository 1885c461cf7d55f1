"""A simulated machine: a real asyncua server on its own port, its address space fed by a physics tick.

Every tick advances the profile's model by exactly 1/rate seconds of simulated time (so a seed gives the
same values on every run) and writes each variable whose value changed, stamped with the tick's wall-clock
time as both SourceTimestamp and ServerTimestamp. Writing only changes means every written value becomes
exactly one notification for a subscriber with the default StatusValue trigger and a large enough queue.
The record (`produced`, or JSONL lines) holds precisely those writes as (tag, µs timestamp, value),
plus setpoint changes made by clients, which a subscriber also sees.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Self

from asyncua import Server, ua

from plantwire.logs import get_logger
from plantwire.wire import WireError, check_id
from plantwire_sims.address_space import NAMESPACE_URI, SimError, build_machine, guard_setpoint_ranges
from plantwire_sims.asyncua_internals import init_server, stop_server_now, use_history_storage
from plantwire_sims.cnc import CncModel
from plantwire_sims.extra import ExtraSignals, extra_specs
from plantwire_sims.meter import MeterModel
from plantwire_sims.model import Model, TagSpec, Value, quantizer
from plantwire_sims.pump import PumpModel
from plantwire_sims.recent_history import RecentHistory
from plantwire_sims.recording import JsonlRecorder
from plantwire_sims.security import SimSecurity, apply_security
from plantwire_sims.value_writer import ValueWriter, datetime_to_us

__all__ = ["PROFILES", "SimError", "SimMachine", "run_machines"]

log = get_logger(__name__)

PROFILES: dict[str, Callable[[random.Random], Model]] = {
    "cnc": CncModel,
    "pump": PumpModel,
    "meter": MeterModel,
}
DESCRIPTIONS = {
    "cnc": "Simulated CNC machining centre",
    "pump": "Simulated centrifugal pump",
    "meter": "Simulated three-phase energy meter",
}
OVERRUN_LOG_INTERVAL_S = 10.0


class SimMachine:
    """One simulated machine; `async with` it and it listens and ticks until the block ends."""

    def __init__(
        self,
        profile: str,
        name: str,
        port: int,
        host: str = "127.0.0.1",
        rate_hz: float = 2.0,
        seed: int = 1,
        extra_tags: int = 0,
        record: bool = False,
        record_file: Path | None = None,
        *,
        recorder: JsonlRecorder | None = None,
        security: SimSecurity | None = None,
        history_s: float = 0.0,
    ):
        if profile not in PROFILES:
            raise SimError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
        try:
            check_id("machine", name)
        except WireError as err:
            raise SimError(str(err)) from err
        if not 1 <= port <= 65535:
            raise SimError(f"port {port} is not in 1-65535")
        if not rate_hz > 0:
            raise SimError(f"rate {rate_hz} Hz must be above 0")
        if extra_tags < 0:
            raise SimError(f"extra tags {extra_tags} must be 0 or more")
        if history_s < 0:
            raise SimError(f"history {history_s} s must be 0 (off) or more")
        self.profile = profile
        self.name = name
        self.host = host
        self.port = port
        self.rate_hz = rate_hz
        self.seed = seed
        self.model = PROFILES[profile](random.Random(seed))
        self._extra_specs = extra_specs(extra_tags)
        self._extra = ExtraSignals(self._extra_specs, seed) if extra_tags else None
        self.specs: tuple[TagSpec, ...] = self.model.specs + self._extra_specs
        self._quantizers = [quantizer(s.resolution) if s.resolution is not None else None for s in self.specs]
        self.security = security or SimSecurity()
        self.history_s = history_s
        self.tags: list[str] = [spec.path for spec in self.specs]
        self._index = {path: i for i, path in enumerate(self.tags)}
        self._setpoints = [i for i, spec in enumerate(self.specs) if spec.writable]
        self.produced: list[tuple[str, int, Value]] = []
        self._record = record
        self._record_file = record_file
        self._recorder = recorder
        self._last_values: list[Value | None] = [None] * len(self.specs)
        self._last_setpoint_dv: dict[int, ua.DataValue | None] = {}
        self._inputs: dict[str, Value] = {self.tags[i]: self.specs[i].initial for i in self._setpoints}
        self._last_ts = 0
        self._ticks = 0
        self.values_written = 0
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._stack: AsyncExitStack | None = None
        self._task: asyncio.Task[None] | None = None
        self._writer: ValueWriter | None = None
        self._server: Server | None = None

    @property
    def server(self) -> Server | None:
        """The asyncua server while the machine runs (for tests and benchmarks that inspect it)."""
        return self._server

    @property
    def callback_errors(self) -> int:
        """Subscriber callbacks that failed on a written value (each skipped, the rest served)."""
        return self._writer.callback_errors if self._writer is not None else 0

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}"

    @property
    def root_node_id(self) -> str:
        return f"ns=2;s={self.name}"

    @property
    def ticks(self) -> int:
        """Ticks done so far, the initial one included."""
        return self._ticks

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Build the address space, write the first values, listen, then tick."""
        self._check_port_free()
        async with AsyncExitStack() as stack:
            server = Server()
            await init_server(server)
            server.set_endpoint(self.endpoint)
            server.set_server_name(f"Plantwire {DESCRIPTIONS[self.profile]} {self.name}")
            await apply_security(server, self.security, self.name, self.host)
            history = RecentHistory(timedelta(seconds=self.history_s)) if self.history_s > 0 else None
            if history is not None:
                use_history_storage(server, history)
            ns = await server.register_namespace(NAMESPACE_URI)
            if ns != 2:
                raise SimError(f"namespace {NAMESPACE_URI} got index {ns}, expected 2")
            nodes = await build_machine(
                server,
                ns,
                self.name,
                f"{DESCRIPTIONS[self.profile]} {self.name}",
                self.specs,
                self.model.methods(),
                history=history is not None,
            )
            guard_setpoint_ranges(
                server,
                {
                    nodes.variables[i]: eu_range
                    for i in self._setpoints
                    if (eu_range := self.specs[i].eu_range) is not None
                },
            )
            self._writer = ValueWriter(
                server, nodes.variables, self.specs, machine=self.name, history=history
            )
            if self._recorder is None and self._record_file is not None:
                self._recorder = await stack.enter_async_context(JsonlRecorder(self._record_file))
            await self._tick()  # real values, recorded, before any client can connect
            try:
                await server.start()
            except OSError as err:
                raise SimError(
                    f"{self.name}: cannot listen on {self.host}:{self.port}: {err.strerror}"
                ) from err
            stack.push_async_callback(stop_server_now, server)
            self._server = server
            self._task = asyncio.create_task(self._run(), name=f"sim-{self.name}")
            self._stack = stack.pop_all()
        log.info(
            "sim_started",
            machine=self.name,
            profile=self.profile,
            endpoint=self.endpoint,
            tags=len(self.tags),
        )

    def _check_port_free(self) -> None:
        """Fail early with one clear line; asyncua would log a traceback of its own first."""
        try:
            with socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server does
                probe.bind((self.host, self.port))
        except OSError as err:
            raise SimError(f"{self.name}: cannot listen on {self.host}:{self.port}: {err.strerror}") from err

    async def stop(self) -> None:
        """Stop ticking, stop the server, flush the record. Safe to call twice."""
        task, self._task = self._task, None
        stack, self._stack = self._stack, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        self._server = None
        if stack is not None:
            await stack.aclose()
            log.info("sim_stopped", machine=self.name, ticks=self._ticks)
        if task is not None and not task.cancelled() and task.exception() is not None:
            raise SimError(f"{self.name}: the tick loop failed") from task.exception()

    def pause(self) -> None:
        """Hold the tick loop (values freeze, the server keeps serving)."""
        self._resumed.clear()

    def resume(self) -> None:
        self._resumed.set()

    async def _run(self) -> None:
        try:
            loop = asyncio.get_running_loop()
            period = 1.0 / self.rate_hz
            next_at = loop.time() + period
            overruns = 0
            last_overrun_log = 0.0
            while True:
                delay = next_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -period:  # too slow for the rate: skip the backlog rather than burst
                    overruns += 1
                    next_at = loop.time()
                    if next_at - last_overrun_log > OVERRUN_LOG_INTERVAL_S:
                        log.warning(
                            "sim_tick_overrun", machine=self.name, rate_hz=self.rate_hz, overruns=overruns
                        )
                        last_overrun_log = next_at
                if not self._resumed.is_set():
                    await self._resumed.wait()
                    next_at = loop.time()
                await self._tick()
                next_at += period
        except Exception:
            log.exception("sim_tick_failed", machine=self.name)
            raise

    async def _tick(self) -> None:
        assert self._writer is not None
        ts_us = max(time.time_ns() // 1_000, self._last_ts + 1)  # strictly increasing per machine
        self._last_ts = ts_us
        self._read_setpoints()
        first = self._ticks == 0
        values = self.model.step(0.0 if first else 1.0 / self.rate_hz, self._inputs)
        if self._extra is not None:
            self._extra.step(0.0 if first else 1.0 / self.rate_hz, values)
        if first:
            values.update(self._inputs)
        changes: list[tuple[int, Value]] = []
        last = self._last_values
        index = self._index
        quantizers = self._quantizers
        for path, value in values.items():
            i = index[path]
            quantize = quantizers[i]
            if quantize is not None:
                value = quantize(value)  # type: ignore[arg-type]  # a resolution means a float
            if last[i] != value:
                last[i] = value
                changes.append((i, value))
        await self._writer.write(ts_us, changes)
        self.values_written += len(changes)
        if first:
            for i in self._setpoints:
                self._last_setpoint_dv[i] = self._writer.current(i)
        self._record_changes(((self.tags[i], ts_us, v) for i, v in changes))
        self._ticks += 1

    def _read_setpoints(self) -> None:
        """Pick up setpoints clients wrote since the last tick; the simulator never writes them again."""
        assert self._writer is not None
        for i in self._setpoints:
            dv = self._writer.current(i)
            if dv is None or dv is self._last_setpoint_dv.get(i, dv) or dv.Value is None:
                continue
            self._last_setpoint_dv[i] = dv
            self._writer.keep(i, dv)
            value = dv.Value.Value
            self._inputs[self.tags[i]] = value
            stamp = dv.SourceTimestamp or dv.ServerTimestamp
            if stamp is not None:
                self._record_changes([(self.tags[i], datetime_to_us(stamp), value)])

    def _record_changes(self, records: Iterable[tuple[str, int, Value]]) -> None:
        if not self._record and self._recorder is None:
            return
        rows = list(records)
        if self._record:
            self.produced.extend(rows)
        if self._recorder is not None:
            for tag, ts_us, value in rows:
                self._recorder.add(self.name, tag, ts_us, value)


async def run_machines(
    profile: str,
    count: int,
    port: int,
    host: str = "127.0.0.1",
    rate_hz: float = 2.0,
    seed: int = 1,
    extra_tags: int = 0,
    record_file: Path | None = None,
    names: Sequence[str] | None = None,
    duration: float | None = None,
    *,
    on_ready: Callable[[list[SimMachine]], None] | None = None,
    security: SimSecurity | None = None,
    history_s: float = 0.0,
) -> None:
    """Run `count` machines on ports port..port+count-1, named `{profile}-{i}` with seed `seed+i`.

    Runs until cancelled, or for `duration` seconds. `on_ready` is called once all of them listen.
    """
    if count < 1:
        raise SimError(f"count {count} must be at least 1")
    if names is not None and len(names) != count:
        raise SimError(f"{len(names)} names given for {count} machines")
    if port + count - 1 > 65535:
        raise SimError(f"ports {port}..{port + count - 1} go beyond 65535")
    machine_names = list(names) if names is not None else [f"{profile}-{i}" for i in range(1, count + 1)]
    if len(set(machine_names)) != len(machine_names):
        raise SimError("machine names must be unique")
    async with AsyncExitStack() as stack:
        recorder = None
        if record_file is not None:
            recorder = await stack.enter_async_context(JsonlRecorder(record_file))
        machines = [
            SimMachine(
                profile,
                name,
                port + i - 1,
                host,
                rate_hz,
                seed + i,
                extra_tags,
                recorder=recorder,
                security=security,
                history_s=history_s,
            )
            for i, name in enumerate(machine_names, start=1)
        ]
        for machine in machines:
            await stack.enter_async_context(machine)
        if on_ready is not None:
            on_ready(machines)
        if duration is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(duration)
