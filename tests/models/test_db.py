"""models/db.py: one engine and one session factory per resolved URL, however the caller names it."""

from __future__ import annotations

from models import db as db_module
from models.settings import get_settings


def test_no_url_and_the_setting_share_one_engine(database_url: str) -> None:
    setting = get_settings().database_url
    assert db_module.get_engine() is db_module.get_engine(None) is db_module.get_engine(setting)
    sessions = db_module.get_sessionmaker
    assert sessions() is sessions(None) is sessions(setting)
    assert db_module.get_sessionmaker().kw["bind"] is db_module.get_engine()


def test_clear_caches_gives_a_new_engine(database_url: str) -> None:
    before = db_module.get_engine()
    db_module.clear_caches()
    after = db_module.get_engine()
    assert after is not before and db_module.get_sessionmaker().kw["bind"] is after
    before.dispose()
