"""Integration connection payloads: the seed 000 create body and the seed response object."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

from models.schemas.common import Pagination
from models.schemas.fields import NO_NUL, Flag, LongText, Provider, Str64, Str255, Str512, Str1024

MAX_EXPIRES_IN = 10**18


def _expires_in(value: Any) -> Any:
    """expires_in comes as a date ("2026-12-31") or as seconds: stored as text either way."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_EXPIRES_IN:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_EXPIRES_IN:
        return str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"must be a date as text, or seconds from -{MAX_EXPIRES_IN} to {MAX_EXPIRES_IN}")
    return value


def _supporting_fields(value: Any) -> Any:
    """The seed sends a JSON string; a JSON object is accepted too and stored as its text."""
    if isinstance(value, dict):
        return json.dumps(value)
    return value


EXPIRES_IN_SCHEMA = {"anyOf": [
    {"type": "string", "maxLength": 64, "pattern": NO_NUL},
    {"type": "integer", "minimum": -MAX_EXPIRES_IN, "maximum": MAX_EXPIRES_IN}, {"type": "null"},
], "description": 'a date ("2026-12-31") or seconds; stored as text'}
SUPPORTING_FIELDS_SCHEMA = {"anyOf": [
    {"type": "string", "maxLength": 65_535, "pattern": NO_NUL, "contentMediaType": "application/json",
     "contentSchema": {"type": "object"}},
    {"type": "object"}, {"type": "null"},
], "description": 'a JSON object written as text, as seed 000 sends it (`"{\\"region\\":\\"US\\"}"`), '
                  "or the object itself (stored as its text); blank or null: none. The server refuses text "
                  "that does not parse as a JSON object, which a JSON Schema cannot express"}


ExpiresIn = Annotated[Str64 | None, BeforeValidator(_expires_in), WithJsonSchema(EXPIRES_IN_SCHEMA)]


def _not_a_boolean(value: Any) -> Any:
    """true/false are not limits (pydantic would read them as 1 and 0)."""
    if isinstance(value, bool):
        raise ValueError("must be a positive integer or null")
    return value


Limit = Annotated[Annotated[int, Field(ge=1, le=10**9)] | None, BeforeValidator(_not_a_boolean)]


class RateLimits(BaseModel):
    """Overrides of the provider's published limits (docs/partner-limits.md): each a positive integer,
    or null for none; a key left out keeps the provider's default."""

    model_config = ConfigDict(extra="forbid")

    per_minute: Limit = None
    per_day: Limit = None
    concurrent: Limit = None

    def overrides(self) -> dict[str, int | None]:
        """Only the keys that were sent (null included)."""
        return {key: getattr(self, key) for key in sorted(self.model_fields_set)}


class ConnectionCreate(BaseModel):
    """POST /integration: every field of seed 000 (the SDK's IntegrationConnectionCreateRequestDTO)."""

    model_config = ConfigDict(extra="ignore")

    provider: Provider
    remote_instance_id: Str255 | None = None
    remote_instance_code: Str255 | None = None
    remote_instance_name: Str255 | None = None
    remote_instance_display: Str512 | None = None
    integration_client_id: Str512 | None = None
    integration_client_secret: LongText | None = None
    integration_access_token: LongText | None = None
    integration_refresh_token: LongText | None = None
    token_type: Str64 | None = None
    expires_in: ExpiresIn = None
    account_server: Str1024 | None = None
    api_domain: Str1024 | None = None
    supporting_fields: Annotated[LongText | None, BeforeValidator(_supporting_fields),
                                 WithJsonSchema(SUPPORTING_FIELDS_SCHEMA)] = None
    user_name: Str255 | None = None
    user_password: LongText | None = None
    require_authentication: Flag = None
    state: Str64 | None = None
    company_file: Str255 | None = None
    company_name: Str255 | None = None
    rate_limits: RateLimits | None = None

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


class ConnectionUpdate(ConnectionCreate):
    """PATCH /integration/{connection_uuid}: the create fields, every one optional; only those sent change."""

    provider: Provider | None = None


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
    rate_limits: dict[str, Any] = Field(description="the limits in force (the provider's defaults with the "
                                                    "connection's overrides) and the overrides themselves")
    budget: dict[str, Any] | None = Field(default=None, description=(
        "the budget's state now: used this minute, used today, in flight, paused until and why (details "
        "only)"))


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
