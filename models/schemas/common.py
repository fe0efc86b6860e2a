"""Shapes shared by every resource: the error body, messages and the pagination object."""

from __future__ import annotations

from pydantic import BaseModel


class ErrorItem(BaseModel):
    """One problem, named by the full dotted path of the field in the request."""

    field: str
    message: str


class ErrorBody(BaseModel):
    """Every 4xx (and 5xx) body."""

    errors: list[ErrorItem]


class Message(BaseModel):
    """Enable, disable, delete and configuration answers (the seeds' `{"message": ...}`)."""

    message: str


class Pagination(BaseModel):
    """limit/offset paging; the page URLs are absolute, null at either end."""

    records: int
    limit: int
    offset: int
    previous_page: str | None
    next_page: str | None
