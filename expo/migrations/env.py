"""Alembic environment: runs migrations on the configured (async) database."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from expo.db import Database
from expo.models_registry import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _migrate(url: str) -> None:
    db = Database(url, pool_size=1)
    try:
        async with db.write_engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await db.dispose()


url = config.get_main_option("sqlalchemy.url")
if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_migrate(str(url)))
