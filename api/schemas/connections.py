"""Integration connection payloads: the seed 000 create body and the seed response object."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints, field_validator

from api.fields import Flag, LongText, Str64, Str255, Str512, Str1024, storable_text
from api.schemas.common import Pagination


def _expires_in(value: Any) -> Any:
    """expires_in comes as a date ("2026-12-31") or as seconds: stored as text either way."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _supporting_fields(value: Any) -> Any:
    """The seed sends a JSON string; a JSON object is accepted too and stored as its text."""
    if isinstance(value, dict):
        return json.dumps(value)
    return value


class ConnectionCreate(BaseModel):
    """POST /integration: every field of seed 000 (the SDK's IntegrationConnectionCreateRequestDTO)."""

    model_config = ConfigDict(extra="ignore")

    provider: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    remote_instance_id: Str255 | None = None
    remote_instance_code: Str255 | None = None
    remote_instance_name: Str255 | None = None
    remote_instance_display: Str512 | None = None
    integration_client_id: Str512 | None = None
    integration_client_secret: LongText | None = None
    integration_access_token: LongText | None = None
    integration_refresh_token: LongText | None = None
    token_type: Str64 | None = None
    expires_in: Annotated[Str64 | None, BeforeValidator(_expires_in)] = None
    account_server: Str1024 | None = None
    api_domain: Str1024 | None = None
    supporting_fields: Annotated[LongText | None, BeforeValidator(_supporting_fields)] = None
    user_name: Str255 | None = None
    user_password: LongText | None = None
    require_authentication: Flag = None
    state: Str64 | None = None
    company_file: Str255 | None = None
    company_name: Str255 | None = None

    @field_validator("provider")
    @classmethod
    def _provider_storable(cls, value: str) -> str:
        """A provider name becomes a code; it must be text a database can hold."""
        return storable_text(value)

    @field_validator("supporting_fields")
    @classmethod
    def _supporting_fields_object(cls, value: str | None) -> str | None:
        """The engine reads path overrides from it, so it must be a JSON object (or empty)."""
        if value is None or not value.strip():
            return None
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ValueError("must be a JSON object (as text)") from exc
        if not isinstance(parsed, dict):
            raise ValueError("must be a JSON object (as text)")
        return value


class ConnectionPublic(BaseModel):
    """The seed 000 `integration_connection` object, credentials masked."""

    status: str
    uuid: str
    integration_partner: str
    remote_instance_id: str | None
    remote_instance_name: str | None
    client_id: str | None
    client_secret: str | None
    access_token: str | None
    refresh_token: str | None


class ConnectionDetails(ConnectionPublic):
    """The list/details object: the seed keys plus the non-secret fields an operator needs."""

    provider_name: str
    remote_instance_code: str | None
    remote_instance_display: str | None
    token_type: str | None
    expires_in: str | None
    account_server: str | None
    api_domain: str | None
    user_name: str | None
    require_authentication: str
    state: str | None
    company_file: str | None
    company_name: str | None
    suspended: str
    needs_reconnect: str
    created_at: str
    updated_at: str


class ConnectionCreated(BaseModel):
    """Inner wrapper of the create answer."""

    integration_connection: ConnectionPublic


class ConnectionCreateResponse(BaseModel):
    """POST /integration answer: `{"integration": {"integration_connection": {...}}}`."""

    integration: ConnectionCreated


class ConnectionDetailsResponse(BaseModel):
    """GET /api/v2/integration-connections/{uuid} (the SDK's IntegrationConnectionGetResponseDTO)."""

    integration_connection: ConnectionDetails


class ConnectionListResponse(BaseModel):
    """GET /api/v2/integration-connections (the SDK's IntegrationConnectionListResponseDTO)."""

    integration_connection: list[ConnectionDetails]
    pagination: Pagination
