"""Imports every table so `Base.metadata` is complete (Alembic and tests import this), and names the Core
tables the hot paths write with statements of their own."""

from typing import cast

from sqlalchemy import Table

from models.automation import Automation
from models.base import Base
from models.configuration import Configuration
from models.connection import Connection
from models.partner_function import PartnerFunction
from models.run import Run

# DeclarativeBase types __table__ as FromClause (it may be any selectable); these are plain Tables.
AUTOMATIONS = cast(Table, Automation.__table__)
CONNECTIONS = cast(Table, Connection.__table__)
PARTNER_FUNCTIONS = cast(Table, PartnerFunction.__table__)
RUNS = cast(Table, Run.__table__)

__all__ = ["AUTOMATIONS", "CONNECTIONS", "PARTNER_FUNCTIONS", "RUNS", "Automation", "Base", "Configuration",
           "Connection", "PartnerFunction", "Run"]
