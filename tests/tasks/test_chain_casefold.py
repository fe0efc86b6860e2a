"""`another_automation` names its target by name or code ignoring case the way criteria do: Unicode
case folding and NFC, in Python, whatever the database's lower() folds (SQLite folds ASCII only)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tasks.chain import named_automation
from tests.support.factories import make_automation, make_connection


@pytest.mark.parametrize(("stored", "asked"), [
    ({"name": "Überweisungen", "code": "u1"}, "überweisungen"),
    ({"name": "überweisungen", "code": "u1"}, "ÜBERWEISUNGEN"),
    ({"name": "Straße prüfen", "code": "s1"}, "STRASSE PRÜFEN"),
    ({"name": "Other", "code": "straße"}, "STRASSE"),
    ({"name": "Café", "code": "c1"}, "CAFE\u0301"),  # decomposed é
    ({"name": "Cafe\u0301", "code": "c1"}, "café"),
    ({"name": "Ωmega", "code": "o1"}, "\u2126MEGA"),  # the Ohm sign is canonically Ω
    ({"name": "Plain", "code": "p1"}, "  plain "),
    ({"name": "Plain", "code": "P-Code"}, "p-code"),
])
def test_the_target_is_found_ignoring_case_and_normalisation(db: Session, stored: dict[str, str],
                                                             asked: str) -> None:
    conn = make_connection(db)
    make_automation(db, conn, name="Unrelated", code="unrelated")
    target = make_automation(db, conn, name=stored["name"], code=stored["code"])
    db.commit()
    found = named_automation(db, conn.id, asked)
    assert found is not None and found.id == target.id


def test_only_the_connections_own_automations_and_the_first_of_several(db: Session) -> None:
    conn, other = make_connection(db), make_connection(db, remote_instance_id="tenant-2")
    make_automation(db, other, name="Überweisungen", code="x")
    db.commit()
    assert named_automation(db, conn.id, "überweisungen") is None
    first = make_automation(db, conn, name="ÜBERWEISUNGEN", code="a")
    make_automation(db, conn, name="b", code="überweisungen")
    db.commit()
    found = named_automation(db, conn.id, "Überweisungen")
    assert found is not None and found.id == first.id
    assert named_automation(db, conn.id, "Uberweisungen") is None
    assert named_automation(db, conn.id, "") is None
