"""Imports every table so `Base.metadata` is complete (Alembic and tests import this)."""

from models.automation import Automation
from models.base import Base
from models.configuration import Configuration
from models.connection import Connection
from models.partner_function import PartnerFunction
from models.run import Run

__all__ = ["Automation", "Base", "Configuration", "Connection", "PartnerFunction", "Run"]
