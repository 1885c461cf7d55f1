"""A real PostgreSQL for the platform's tests: one database per test run, one schema per test.

PostgreSQL runs on 127.0.0.1:5432 (user postgres, trust authentication; `./dev test` starts the
cluster when it is installed and stopped). PLANTWIRE_TEST_POSTGRES_DSN points elsewhere. A test
that needs it fails (never skips) when the server cannot be reached.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest

ADMIN_DSN = os.environ.get("PLANTWIRE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_DSN, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """The DSN of a database made for this test run (dropped at its end)."""
    name = "plantwire_test_" + uuid.uuid4().hex[:12]
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError) as err:
        pytest.fail(
            f"PostgreSQL is not reachable at {ADMIN_DSN.split('@')[-1]} ({err}); start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` or ./dev test"
        )
    base = ADMIN_DSN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_schema() -> str:
    """A schema name no other test uses (so each test starts from empty tables)."""
    return "t_" + uuid.uuid4().hex[:12]
