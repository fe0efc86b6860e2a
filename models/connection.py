"""Integration connection: a link to one external system (Xero, QuickBooks, the sandbox...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models import crypto
from models.base import Base, IdentityMixin

if TYPE_CHECKING:
    from models.automation import Automation
    from models.configuration import Configuration
    from models.partner_function import PartnerFunction

#: Credential name → column holding its ciphertext.
SECRET_FIELDS: dict[str, str] = {
    "client_secret": "client_secret_enc",
    "access_token": "access_token_enc",
    "refresh_token": "refresh_token_enc",
    "user_password": "user_password_enc",
}

ACTIVE = "ACTIVE"
INACTIVE = "INACTIVE"


class Connection(IdentityMixin, Base):
    """Every field of the seed 000 create payload; credentials only as ciphertext."""

    __tablename__ = "integration_connections"

    provider: Mapped[str] = mapped_column(String(64), index=True)  # the code: QUICKBOOKS
    provider_name: Mapped[str] = mapped_column(String(128))  # as given: "QuickBooks"
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE, index=True)
    remote_instance_id: Mapped[str | None] = mapped_column(String(255))
    remote_instance_code: Mapped[str | None] = mapped_column(String(255))
    remote_instance_name: Mapped[str | None] = mapped_column(String(255))
    remote_instance_display: Mapped[str | None] = mapped_column(String(512))
    client_id: Mapped[str | None] = mapped_column(String(512))
    client_secret_enc: Mapped[str | None] = mapped_column(Text)
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    token_type: Mapped[str | None] = mapped_column(String(64))
    expires_in: Mapped[str | None] = mapped_column(String(64))
    account_server: Mapped[str | None] = mapped_column(String(1024))
    api_domain: Mapped[str | None] = mapped_column(String(1024))
    supporting_fields: Mapped[str | None] = mapped_column(Text)  # JSON text, as the seed sends it
    user_name: Mapped[str | None] = mapped_column(String(255))
    user_password_enc: Mapped[str | None] = mapped_column(Text)
    require_authentication: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str | None] = mapped_column(String(64))
    company_file: Mapped[str | None] = mapped_column(String(255))
    company_name: Mapped[str | None] = mapped_column(String(255))
    # 4me's idea (seed 002): suspended with a comment, re-enabled by either party.
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    suspension_comment: Mapped[str | None] = mapped_column(Text)
    # Set when a token refresh is refused (invalid_grant): an operator must reconnect.
    needs_reconnect: Mapped[bool] = mapped_column(Boolean, default=False)
    # Partner limits: overrides of the provider's defaults (models.limits), {"per_minute", "per_day",
    # "concurrent"}, each a positive integer or null for none; None: the defaults.
    rate_limits: Mapped[dict[str, Any] | None] = mapped_column(default=None)

    partner_functions: Mapped[list[PartnerFunction]] = relationship(
        back_populates="connection", cascade="all, delete-orphan", passive_deletes=True
    )
    automations: Mapped[list[Automation]] = relationship(
        back_populates="connection", cascade="all, delete-orphan", passive_deletes=True
    )
    configuration: Mapped[Configuration | None] = relationship(
        back_populates="connection", cascade="all, delete-orphan", passive_deletes=True, uselist=False
    )

    def set_secret(self, name: str, plaintext: str | None, secret_key: str) -> None:
        """Store a credential (client_secret, access_token, refresh_token, user_password) encrypted."""
        setattr(self, SECRET_FIELDS[name], crypto.encrypt(plaintext, secret_key))

    def secret(self, name: str, secret_key: str) -> str | None:
        """Decrypt a credential: call only where the value is about to be used."""
        return crypto.decrypt(getattr(self, SECRET_FIELDS[name]), secret_key)

    def masked(self, name: str, secret_key: str) -> str | None:
        """The credential as responses show it: `****` and the last 4 characters."""
        return crypto.mask(self.secret(name, secret_key))

    @property
    def is_active(self) -> bool:
        """Runs go ahead only on an active, unsuspended connection that needs no reconnection."""
        return self.status == ACTIVE and not self.suspended and not self.needs_reconnect
