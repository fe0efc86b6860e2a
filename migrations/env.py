"""Alembic environment: the URL comes from `-x url=...`, the config, or DATABASE_URL."""

from __future__ import annotations

from alembic import context

from models.db import make_engine, normalise_url
from models.settings import get_settings
from models.tables import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    """Command-line `-x url=` wins, then an URL set by the caller on the config, then DATABASE_URL."""
    x_url = context.get_x_argument(as_dictionary=True).get("url")
    return normalise_url(x_url or config.get_main_option("sqlalchemy.url") or get_settings().database_url)


def run_offline() -> None:
    """Emit SQL without a connection (`alembic upgrade head --sql`)."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Apply migrations over a real connection; batch mode so SQLite can alter tables."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: object) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
