"""The models round-trip through the migrated schema on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import crypto
from models.automation import Automation
from models.configuration import Configuration
from models.connection import Connection
from models.providers import is_known, provider_code
from models.run import Run
from models.settings import get_settings
from tests.support.factories import make_automation, make_connection, make_partner_function

SLOT = datetime(2026, 11, 23, 6, 45, 23, tzinfo=UTC)


def test_connection_round_trip_keeps_every_field(db: Session) -> None:
    conn = make_connection(db, provider="QUICKBOOKS", provider_name="QuickBooks", remote_instance_code="QB-1",
                           remote_instance_name="QuickBooks Demo Corp", supporting_fields='{"region":"US"}',
                           require_authentication=True, company_file="abc", company_name="Demo",
                           suspended=True, suspension_comment="maintenance")
    db.commit()
    db.expunge_all()
    got = db.scalars(select(Connection).where(Connection.uuid == conn.uuid)).one()
    assert (got.provider, got.provider_name, got.remote_instance_code) == ("QUICKBOOKS", "QuickBooks", "QB-1")
    assert got.supporting_fields == '{"region":"US"}'
    assert got.require_authentication is True and got.suspended is True
    assert got.suspension_comment == "maintenance"
    assert got.secret("access_token", get_settings().secret_key) == "access-token-abcd"
    assert got.masked("client_secret", get_settings().secret_key) == "****1234"
    assert got.created_at.tzinfo is not None


def test_credentials_are_unreadable_in_the_raw_table(db: Session) -> None:
    make_connection(db, access_token="plain-access-token-9999", client_secret="plain-client-secret-8888",
                    refresh_token="plain-refresh-7777", user_password="plain-password-6666")
    db.commit()
    row = db.execute(text("SELECT client_secret_enc, access_token_enc, refresh_token_enc, user_password_enc "
                          "FROM integration_connections")).one()
    dump = " ".join(row)
    for plain in ("plain-access-token-9999", "plain-client-secret-8888", "plain-refresh-7777",
                  "plain-password-6666", "9999", "8888"):
        assert plain not in dump
    assert all(value.startswith("gAAAA") for value in row)  # Fernet tokens


def test_a_wrong_secret_key_cannot_decrypt(db: Session) -> None:
    conn = make_connection(db)
    with pytest.raises(crypto.CredentialError):
        conn.secret("access_token", "another-key")


def test_run_slot_is_unique_in_the_database(db: Session) -> None:
    conn = make_connection(db)
    auto = make_automation(db, conn, make_partner_function(db, conn))
    db.add(Run(automation_id=auto.id, scheduled_for=SLOT))
    db.commit()
    db.add(Run(automation_id=auto.id, scheduled_for=SLOT, trigger="manual"))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()
    db.add(Run(automation_id=auto.id, scheduled_for=SLOT + timedelta(microseconds=1)))
    db.commit()
    assert db.scalar(select(Run).where(Run.automation_id == auto.id).order_by(Run.id)).scheduled_for == SLOT


def test_automation_code_is_unique_per_connection(db: Session) -> None:
    first, second = make_connection(db), make_connection(db)
    make_automation(db, first, code="dup")
    make_automation(db, second, code="dup")  # another connection: fine
    db.commit()
    with pytest.raises(IntegrityError):
        make_automation(db, first, code="dup")
        db.commit()
    db.rollback()


def test_automation_round_trip_with_schedule_criteria_and_watermark(db: Session) -> None:
    conn = make_connection(db)
    pf = make_partner_function(db, conn, tag="import_inventory_process")
    groups = [{"group_condition": "AND", "rules": [{"field_name": "A", "operator": "EQUALS", "value": "1",
                                                    "condition": "AND"}]}]
    auto = make_automation(db, conn, pf, custom_time="06:45:23", additional_criteria=True, criteria=groups,
                           watermark_at=SLOT, watermark_ids=["r1", "r2"], status_comment=None)
    db.commit()
    db.expunge_all()
    got = db.scalars(select(Automation).where(Automation.uuid == auto.uuid)).one()
    assert got.criteria == groups and got.watermark_ids == ["r1", "r2"]
    assert got.watermark_at == SLOT
    assert got.schedule_kind == "interval" and got.check_on_minutes == 480
    assert got.next_run_at is not None and got.next_run_at.tzinfo is not None
    assert (got.next_run_at.hour, got.next_run_at.minute, got.next_run_at.second) in {
        (6, 45, 23), (14, 45, 23), (22, 45, 23)}
    assert got.partner_function.uuid == pf.uuid == got.perform_action


def test_deleting_a_connection_cascades_in_the_database(db: Session) -> None:
    conn = make_connection(db)
    auto = make_automation(db, conn, make_partner_function(db, conn))
    db.add(Run(automation_id=auto.id, scheduled_for=SLOT))
    db.add(Configuration(connection_id=conn.id, document={"account": {}}))
    db.commit()
    db.execute(text("DELETE FROM integration_connections WHERE id = :id"), {"id": conn.id})
    db.commit()
    for table in ("automations", "runs", "partner_functions", "integration_configurations"):
        assert db.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0


@pytest.mark.parametrize(
    ("given", "code", "known"),
    [("QuickBooks", "QUICKBOOKS", True), ("Zoho Books", "ZOHO_BOOKS", True), ("xero", "XERO", True),
     ("ms-dynamics 365", "MS_DYNAMICS_365", True), ("Sandbox", "SANDBOX", True),
     ("My ERP", "MY_ERP", False)],
)
def test_provider_codes(given: str, code: str, known: bool) -> None:
    assert provider_code(given) == code
    assert is_known(code) is known


def test_migrations_are_current(database_url: str) -> None:
    from models.migrate import current_heads

    db_rev, head = current_heads(database_url)
    assert db_rev == head and head is not None
