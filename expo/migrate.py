"""Schema migrations through Alembic, configured from settings (no alembic.ini needed)."""

from importlib.resources import files

from alembic import command
from alembic.config import Config


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration for the given database, pointing at the shipped migrations."""
    config = Config()
    config.set_main_option("script_location", str(files("expo") / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (default: the newest)."""
    command.upgrade(alembic_config(database_url), revision)


def new_revision(database_url: str, message: str) -> None:
    """Autogenerate a migration from the difference between the models and the database."""
    command.revision(alembic_config(database_url), message=message, autogenerate=True)
