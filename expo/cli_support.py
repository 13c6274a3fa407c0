"""What every `expo` subcommand shares: the configured database for one piece of work, and instants."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from expo.clock import EXPO_TZ
from expo.db import Database
from expo.settings import Settings

T = TypeVar("T")


def with_db(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run one piece of async work against the configured database (EXPO_* settings), then close it."""

    async def run() -> T:
        database = Database(Settings.from_env().effective_database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(run())


def parse_instant(text: str) -> datetime:
    """An ISO instant from the command line; without a zone it is Shanghai time."""
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=EXPO_TZ)
