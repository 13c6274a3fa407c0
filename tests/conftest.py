"""Shared fixtures: a migrated database per backend (SQLite file, PostgreSQL on 127.0.0.1:5432)."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from expo.clock import EXPO_TZ, FixedClock
from expo.db import Database
from expo.migrate import upgrade
from expo.models_registry import metadata

PG_ADMIN_URL = os.environ.get("EXPO_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


async def pg_reachable() -> bool:
    db = Database(PG_ADMIN_URL, pool_size=1)
    try:
        async with db.read() as session:
            await asyncio.wait_for(session.execute(text("SELECT 1")), timeout=3)
        return True
    except Exception:
        return False
    finally:
        await db.dispose()


async def pg_admin(statement: str) -> None:
    db = Database(PG_ADMIN_URL, pool_size=1)
    try:
        async with db.write_engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await db.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A freshly migrated database on each backend, for the whole session."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "expo.db"
        url = f"sqlite+aiosqlite:///{path}"
        await asyncio.to_thread(upgrade, url)
        yield url
        return
    if not await pg_reachable():
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true but {PG_ADMIN_URL} is unreachable")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: the PostgreSQL leg is skipped")
    name = f"expo_test_{uuid.uuid4().hex[:12]}"
    await pg_admin(f"CREATE DATABASE {name}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        await pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The session's database, emptied before each test."""
    database = Database(database_url)
    async with database.write() as session:
        tables = [t.name for t in reversed(metadata.sorted_tables)]
        if database.sqlite:
            # Orders and tickets refer to each other (upgrades): check the keys at commit, not per delete.
            await session.execute(text("PRAGMA defer_foreign_keys = ON"))
            for table in tables:
                await session.execute(text(f"DELETE FROM {table}"))
        else:
            await session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> FixedClock:
    """10:00 on 1 June 2010, Shanghai time; tests move it explicitly."""
    return FixedClock(datetime(2010, 6, 1, 10, 0, tzinfo=EXPO_TZ))
