"""Apply the Alembic migrations from code (CLI, `make run`, tests): never `create_all`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from models.db import normalise_url

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str) -> Config:
    """The project's alembic.ini pointed at `url`."""
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (default: the newest)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Take the database at `url` back to `revision` (default: empty)."""
    command.downgrade(alembic_config(url), revision)


def current_heads(url: str) -> tuple[str | None, str | None]:
    """(the database's revision, the code's head): equal when migrations are current."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from models.db import make_engine

    script = ScriptDirectory.from_config(alembic_config(url))
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            db_rev = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    return db_rev, script.get_current_head()
