"""Shared fixtures: the session's database (migrated with Alembic) and Redis, and clean tables per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from models import db as db_module
from models import migrate
from models.settings import get_settings
from models.tables import Base
from tests.support.services import fresh_database, redis_server

# Never the settings a developer's `make run` recorded in this checkout's var/ (models/settings.py): the
# suite's processes read only what it sets.
os.environ["VAR_DIR"] = os.path.join(os.path.dirname(os.path.abspath(__file__)), "no-such-var-dir")
TEST_SECRET_KEY = "test-secret-key-for-the-suite"
TEST_API_TOKEN = "test-api-token-0123456789"


def _reset_caches() -> None:
    get_settings.cache_clear()
    db_module.clear_caches()


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for this session's SQLite file, embedded Redis socket and logs."""
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def redis_url(services_dir: Path) -> Iterator[str]:
    """A real Redis for the session (the machine's, or an embedded one)."""
    with redis_server(services_dir) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(services_dir: Path, redis_url: str) -> Iterator[str]:
    """A fresh database with the migrations applied; the process settings point at it."""
    with fresh_database(services_dir) as url:
        migrate.upgrade(url)
        os.environ.update(
            DATABASE_URL=url, REDIS_URL=redis_url, SECRET_KEY=TEST_SECRET_KEY, API_TOKEN=TEST_API_TOKEN
        )
        _reset_caches()
        point_celery_at(redis_url)
        yield url
        db_module.get_engine().dispose()
        _reset_caches()


def point_celery_at(redis_url: str) -> None:
    """Point the Celery app at the session's Redis: it is built at import, maybe before REDIS_URL was set."""
    from worker.celery_app import app as celery_app

    if celery_app.conf.broker_url == redis_url:
        return
    celery_app.conf.update(broker_url=redis_url, result_backend=redis_url)
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture()
def db(database_url: str) -> Iterator[Session]:
    """A session on the test database; every table is emptied after the test."""
    session = db_module.get_sessionmaker()()
    try:
        yield session
    finally:
        session.rollback()
        session.close()
        clean_tables()


def clean_tables() -> None:
    """Delete every row, children first, so tests never share state."""
    engine = db_module.get_engine()
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(text(f"DELETE FROM {table.name}"))
