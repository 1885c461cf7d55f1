"""Registering local identifiers at a second-level node (工业互联网标识解析二级节点) management API.

Protocol: `POST /identity/token` with `{"username", "password"}` answers `{"status": 1, "data":
{"token": "..."}}`; then each record `POST /identityv2/data` with `Authorization: Bearer <token>` and
`{"handle", "templateVersion", "value": [{index, type, data: {format, value}}]}`. HTTP 409, or a body
whose `message` says the handle already exists, counts as success (the record is already there).
5xx and connection errors are retried with exponential backoff; a 401 logs in again once. The
password is sent only in the token request body and never logged.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from plantwire.logs import get_logger
from plantwire_platform.identifiers.catalog import IdentifierCatalog
from plantwire_platform.identifiers.handle import Handle
from plantwire_platform.identifiers.settings import SyncSettings
from plantwire_platform.identifiers.templates import TemplateError, load_template

log = get_logger("plantwire.identifiers.sync")
BATCH = 200


class SyncError(Exception):
    """The node refused the credentials, or stayed unavailable after every retry."""


@dataclass(slots=True)
class SyncReport:
    registered: int = 0
    already: int = 0
    failed: int = 0
    retries: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "registered": self.registered,
            "already": self.already,
            "failed": self.failed,
            "retries": self.retries,
        }


def node_record(handle: Handle) -> dict[str, Any]:
    """The `/identityv2/data` body of one handle: its public typed values (no HS_ADMIN, no restricted)."""
    kind = handle.suffix.partition(".")[0]
    try:
        version = load_template(kind).version
    except TemplateError:
        version = "1.0"
    values = [
        {"index": v.index, "type": v.type, "data": {"format": "string", "value": v.value}}
        for v in handle.values
        if v.format == "string" and v.scope is None
    ]
    return {"handle": handle.name, "templateVersion": version, "value": values}


def _already_exists(status: int, body: Any) -> bool:
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    return status == 409 or "already exist" in message.lower()


class SecondLevelNodeSync:
    def __init__(self, settings: SyncSettings, catalog: IdentifierCatalog) -> None:
        if not settings.url:
            raise SyncError("no second-level node is configured (identifiers.sync.url)")
        self.settings = settings
        self.catalog = catalog
        self._base = settings.url.rstrip("/")
        self._token: str | None = None

    async def run(self) -> SyncReport:
        """Register every identifier not yet synced; marks those the node accepted."""
        report = SyncReport()
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                batch = await self.catalog.unsynced(BATCH)
                done = []
                for handle in batch:
                    if await self._register(session, handle, report):
                        done.append(handle.name)
                if done:
                    await self.catalog.mark_synced(done, time.time())
                if len(done) < len(batch) or len(batch) < BATCH:
                    break
        log.info("identifier_sync_done", **report.as_dict())
        return report

    async def _login(self, session: aiohttp.ClientSession, report: SyncReport) -> str:
        body = {"username": self.settings.username, "password": self.settings.password.get_secret_value()}
        status, answer = await self._post(session, "/identity/token", body, None, report)
        token = answer.get("data", {}).get("token") if isinstance(answer, dict) else None
        if status != 200 or not isinstance(token, str) or not token:
            log.error("identifier_sync_login_refused", status=status, username=self.settings.username)
            raise SyncError(f"the second-level node refused the login (HTTP {status})")
        return token

    async def _register(self, session: aiohttp.ClientSession, handle: Handle, report: SyncReport) -> bool:
        record = node_record(handle)
        for attempt in range(2):
            if self._token is None:
                self._token = await self._login(session, report)
            status, body = await self._post(session, "/identityv2/data", record, self._token, report)
            if status == 401 and attempt == 0:
                self._token = None
                continue
            if _already_exists(status, body):
                report.already += 1
                return True
            ok = 200 <= status < 300 and (not isinstance(body, dict) or body.get("status", 1) == 1)
            if ok:
                report.registered += 1
                return True
            break
        report.failed += 1
        log.warning("identifier_sync_refused", handle=handle.name, status=status)
        return False

    async def _post(
        self,
        session: aiohttp.ClientSession,
        path: str,
        body: dict[str, Any],
        token: str | None,
        report: SyncReport,
    ) -> tuple[int, Any]:
        """POST with retries on 5xx and connection errors; (status, parsed body or None)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        delay = self.settings.backoff_s
        for attempt in range(self.settings.retries + 1):
            try:
                async with session.post(self._base + path, json=body, headers=headers) as resp:
                    status = resp.status
                    try:
                        answer = await resp.json(content_type=None)
                    except ValueError:
                        answer = None
                if status < 500:
                    return status, answer
                error = f"HTTP {status}"
            except (aiohttp.ClientError, TimeoutError) as err:
                error = type(err).__name__
            if attempt == self.settings.retries:
                break
            report.retries += 1
            log.warning("identifier_sync_retry", path=path, error=error, attempt=attempt + 1)
            await asyncio.sleep(delay)
            delay *= 2
        raise SyncError(f"the second-level node stayed unavailable ({error}) at {path}")
