"""`automation-worker import FILE...`: seed JSON payloads into rows, through the API's own service functions.

A file holds one JSON document or a list of them. A document is either a bundle
`{"connection": {...}, "connection_uuid": "...", "partner_functions": [...], "automations": [...],
"configuration": {...}}` (every key optional) or one bare seed payload: a connection create body (it has
`provider`), `{"partner_function": {...}}` or `{"integration": {"automation_details": {...}}}`.
Partner functions, automations and configuration go to the bundle's connection, else to the last
connection imported before them (in any earlier document or file), else to `--connection`.
Idempotent: a connection is found again by provider and remote_instance_id, a partner function by name, an
automation by code (both within the connection); found ones are left as they are unless `update` is set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.automation import Automation
from models.connection import Connection
from models.errors import DefinitionError, DocumentError
from models.partner_function import PartnerFunction
from models.providers import provider_code
from models.schemas.automations import AutomationCreate, AutomationUpdate
from models.schemas.connections import ConnectionCreate
from models.schemas.partner_functions import PartnerFunctionCreate, PartnerFunctionUpdate
from models.settings import Settings
from models.store import automations, configuration, connections, partner_functions
from models.store.lookup import get_connection
from models.store.validation import parse_payload

BUNDLE_KEYS = frozenset({"connection", "connection_uuid", "partner_functions", "automations",
                         "configuration"})
WHAT = ("a connection (seed 000 create body), {\"partner_function\": {...}}, "
        "{\"integration\": {\"automation_details\": {...}}} or a bundle with the keys " + ", ".join(
            sorted(BUNDLE_KEYS)))


@dataclass(frozen=True)
class Imported:
    """What happened to one imported object: created, updated, or left as it was (exists)."""

    kind: str
    label: str
    uuid: str
    action: str


@dataclass
class Importer:
    """Imports documents in order within the caller's transaction, remembering the current connection."""

    session: Session
    settings: Settings
    update: bool = False
    current: Connection | None = None
    outcomes: list[Imported] = field(default_factory=list)

    def use_connection(self, connection_uuid: str) -> None:
        """Start from an existing connection (`--connection`, or a bundle's `connection_uuid`)."""
        self.current = get_connection(self.session, connection_uuid)

    def import_file(self, path: Path) -> None:
        """Every document of one file; errors name the file and the document."""
        docs, listed = load_documents(path)
        for index, doc in enumerate(docs):
            try:
                self.import_document(doc)
            except DefinitionError as exc:
                raise DocumentError(f"{path}[{index}]" if listed else str(path), exc) from None

    def import_document(self, doc: Any) -> None:
        """One bundle or bare payload: connection, partner functions, automations, configuration."""
        bundle = as_bundle(doc)
        if bundle.get("connection_uuid"):
            self.use_connection(str(bundle["connection_uuid"]))
        if bundle.get("connection") is not None:
            self.import_connection(bundle["connection"])
        for i, item in enumerate(as_list(bundle.get("partner_functions"), "partner_functions")):
            self._prefixed(f"partner_functions.{i}", self.import_partner_function, item)
        for i, item in enumerate(as_list(bundle.get("automations"), "automations")):
            self._prefixed(f"automations.{i}", self.import_automation, item)
        if bundle.get("configuration") is not None:
            conn = self.connection_for("configuration")
            configuration.update_configuration(self.session, conn.uuid, bundle["configuration"])
            self.outcomes.append(Imported("configuration", conn.uuid, conn.uuid, "merged"))

    def _prefixed(self, prefix: str, step: Any, item: Any) -> None:
        """Run one step, naming its place in the bundle in any error."""
        try:
            step(item)
        except DefinitionError as exc:
            raise exc.prefixed(prefix) from None

    def connection_for(self, what: str) -> Connection:
        """The connection the next object belongs to, or an error saying how to name one."""
        if self.current is None:
            raise DefinitionError(what, "no connection to put it on: import a connection first, give "
                                        "\"connection_uuid\" in the document, or use --connection UUID")
        return self.current

    def import_connection(self, body: Any) -> None:
        """Find the connection by provider and remote_instance_id, or create it."""
        try:
            payload = parse_payload(ConnectionCreate, body)
        except DefinitionError as exc:
            raise exc.prefixed("connection") from None
        found = find_connection(self.session, provider_code(payload.provider), payload.remote_instance_id)
        action = "exists"
        if found is None:
            found = connections.create_connection(self.session, payload, self.settings.secret_key)
            action = "created"
        self.current = found
        label = f"{found.provider} {found.remote_instance_id or '(no remote_instance_id)'}"
        self.outcomes.append(Imported("connection", label, found.uuid, action))

    def import_partner_function(self, item: Any) -> None:
        """Find the partner function by name on the connection, or create it (updated with `update`)."""
        body = item if isinstance(item, dict) and "partner_function" in item else {"partner_function": item}
        payload = parse_payload(PartnerFunctionCreate, body)
        conn = self.connection_for("partner_function")
        name = payload.partner_function.name
        found = self.session.scalar(select(PartnerFunction).where(
            PartnerFunction.connection_id == conn.id, PartnerFunction.name == name))
        if found is None:
            found, _ = partner_functions.create_partner_function(self.session, conn.uuid, payload)
            action = "created"
        elif self.update:
            update = parse_payload(PartnerFunctionUpdate, body)
            partner_functions.update_partner_function(self.session, conn.uuid, found.uuid, update)
            action = "updated"
        else:
            action = "exists"
        self.outcomes.append(Imported("partner function", name, found.uuid, action))

    def import_automation(self, item: Any) -> None:
        """Find the automation by code on the connection, or create it (updated with `update`)."""
        body = item if isinstance(item, dict) and "integration" in item else {"integration": item}
        payload = parse_payload(AutomationCreate, body)
        conn = self.connection_for("integration")
        code = payload.integration.automation_details.code
        found = self.session.scalar(select(Automation).where(
            Automation.connection_id == conn.id, Automation.code == code))
        tz = self.settings.default_timezone
        if found is None:
            found, _ = automations.create_automation(self.session, conn.uuid, payload, tz)
            action = "created"
        elif self.update:
            update = parse_payload(AutomationUpdate, body)
            automations.update_automation(self.session, conn.uuid, found.uuid, update, tz)
            action = "updated"
        else:
            action = "exists"
        self.outcomes.append(Imported("automation", code, found.uuid, action))


def find_connection(session: Session, provider: str, remote_instance_id: str | None) -> Connection | None:
    """The oldest connection with this provider code and remote_instance_id (None matches None)."""
    stmt = select(Connection).where(Connection.provider == provider)
    column = Connection.remote_instance_id
    stmt = stmt.where(column.is_(None) if remote_instance_id is None else column == remote_instance_id)
    return session.scalars(stmt.order_by(Connection.id)).first()


def load_documents(path: Path) -> tuple[list[Any], bool]:
    """A file's documents (its JSON object, or the items of its JSON list) and whether it was a list."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DocumentError(str(path), DefinitionError("file", f"cannot be read: {reason}")) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DocumentError(str(path), DefinitionError("file", f"is not valid JSON: {exc}")) from None
    if data == []:
        raise DocumentError(str(path), DefinitionError("file", "holds an empty list: nothing to import"))
    return (data, True) if isinstance(data, list) else ([data], False)


def as_bundle(doc: Any) -> dict[str, Any]:
    """A document as a bundle: bare seed payloads are put under the key they belong to."""
    if not isinstance(doc, dict):
        raise DefinitionError("document", f"must be a JSON object: {WHAT}")
    if BUNDLE_KEYS & doc.keys():
        return doc
    if "provider" in doc:
        return {"connection": doc}
    if "partner_function" in doc:
        return {"partner_functions": [doc]}
    if "integration" in doc:
        return {"automations": [doc]}
    raise DefinitionError("document", f"is none of {WHAT}")


def as_list(value: Any, key: str) -> list[Any]:
    """A bundle's list (missing means empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise DefinitionError(key, "must be a JSON list")
    return value
