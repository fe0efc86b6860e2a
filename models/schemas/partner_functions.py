"""Partner function payloads (seed 000 create, seed 001 update) and the seed response object."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from models.schemas.common import Pagination
from models.schemas.fields import Direction, KeptRequired255, LongText, Required255, Str255


class PartnerFunctionFields(BaseModel):
    """The fields a client may set; computed ones (uuid, created, provider_name...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    direction: Direction = None
    description: LongText | None = None
    object_name: Str255 | None = None
    object_mapping: Str255 | None = None
    mapping_id: Str255 | None = None
    event_name: Str255 | None = None
    tag: Str255 | None = None
    pre_run_script_id: Str255 | None = None
    post_run_script_id: Str255 | None = None


class PartnerFunctionCreateFields(PartnerFunctionFields):
    """Create: a name is required (automations may name the function instead of its UUID)."""

    name: Required255


class PartnerFunctionUpdateFields(PartnerFunctionFields):
    """Update: every field optional; only the fields sent change."""

    name: KeptRequired255 = None


class PartnerFunctionCreate(BaseModel):
    """POST .../partner-function/: `{"partner_function": {...}}`."""

    model_config = ConfigDict(extra="ignore")

    partner_function: PartnerFunctionCreateFields


class PartnerFunctionUpdate(BaseModel):
    """PATCH .../partner-function/{uuid}: `{"partner_function": {...}}`."""

    model_config = ConfigDict(extra="ignore")

    partner_function: PartnerFunctionUpdateFields


class PartnerFunctionPublic(BaseModel):
    """The seed's 15-key partner function object."""

    uuid: str
    name: str
    description: str | None
    direction: str | None
    event_name: str | None
    provider_name: str
    object_name: str | None
    mapping_id: str | None
    enabled: str
    pre_run_script_id: str | None
    post_run_script_id: str | None
    tag: str | None
    created: str
    updated: str
    object_mapping: str | None


class PartnerFunctionResponse(BaseModel):
    """Create and details answer: `{"partner_function": {...}}`."""

    partner_function: PartnerFunctionPublic


class PartnerFunctionListResponse(BaseModel):
    """List answer (the SDK's PartnerFunctionListResponseDTO)."""

    partner_functions: list[PartnerFunctionPublic]
    pagination: Pagination
