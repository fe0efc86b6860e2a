"""Partner function: what an automation invokes on its connection's integration API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, IdentityMixin

if TYPE_CHECKING:
    from models.connection import Connection


class PartnerFunction(IdentityMixin, Base):
    """Every field of the seed 000/001 payloads and responses."""

    __tablename__ = "partner_functions"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("integration_connections.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    direction: Mapped[str | None] = mapped_column(String(16), index=True)
    object_name: Mapped[str | None] = mapped_column(String(255))
    object_mapping: Mapped[str | None] = mapped_column(String(255))
    mapping_id: Mapped[str | None] = mapped_column(String(255))
    event_name: Mapped[str | None] = mapped_column(String(255))
    tag: Mapped[str | None] = mapped_column(String(255))
    pre_run_script_id: Mapped[str | None] = mapped_column(String(255))
    post_run_script_id: Mapped[str | None] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, index=True)

    connection: Mapped[Connection] = relationship(back_populates="partner_functions")
