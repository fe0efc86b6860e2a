"""Configuration: one JSON document per connection; PATCH is a JSON merge patch (RFC 7386)."""

from __future__ import annotations

import copy
import logging
from typing import Any

from sqlalchemy.orm import Session

from models.configuration import Configuration
from models.errors import DefinitionError
from models.schemas.fields import check_json
from models.store.lookup import get_connection

log = logging.getLogger(__name__)

UPDATED = "Configuration has been updated successfully"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def get_configuration(session: Session, connection_uuid: str) -> dict[str, Any]:
    """The stored document ({} when none was ever stored)."""
    connection = get_connection(session, connection_uuid)
    return dict(connection.configuration.document) if connection.configuration else {}


def update_configuration(session: Session, connection_uuid: str, patch: Any) -> dict[str, Any]:
    """Merge the patch into the stored document and store the result."""
    if not isinstance(patch, dict):
        raise DefinitionError("body", "must be a JSON object")
    check_json(patch, "")
    connection = get_connection(session, connection_uuid)
    if connection.configuration is None:
        connection.configuration = Configuration(connection_id=connection.id, document={})
    document: dict[str, Any] = merge_patch(connection.configuration.document, patch)
    connection.configuration.document = document
    session.flush()
    log.info("updated configuration of connection %s (%d top-level keys)", connection.uuid, len(document))
    return document
