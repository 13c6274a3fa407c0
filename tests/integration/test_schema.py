"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL.

A model changed without its migration (or the reverse) would pass every test that runs on the models'
own view of the tables and still break a production database upgraded by `expo db upgrade`.
"""

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from expo.db import Database
from expo.models_registry import metadata


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": False})
    return list(compare_metadata(context, metadata))


async def test_the_migrated_database_matches_the_models(database_url: str) -> None:
    database = Database(database_url)
    try:
        async with database.read() as session:
            connection = await session.connection()
            differences = await connection.run_sync(_differences)
    finally:
        await database.dispose()
    assert differences == []
