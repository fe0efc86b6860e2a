"""The project's exception tree: one type per way a request or a run can fail.

The API maps these to HTTP in one handler; the worker records them on the run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one field, named by its full dotted path in the request."""

    field: str
    message: str


class AutomationWorkerError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigurationError(AutomationWorkerError):
    """A service was started without what it needs (its secrets); it refuses to start."""


class DefinitionError(AutomationWorkerError):
    """A definition (schedule, criteria, payload field) is invalid; answered with 422."""

    def __init__(self, field: str, message: str, *more: FieldError) -> None:
        self.errors: tuple[FieldError, ...] = (FieldError(field, message), *more)
        super().__init__(f"{field}: {message}")

    @property
    def field(self) -> str:
        """The first offending field's dotted path."""
        return self.errors[0].field

    @property
    def message(self) -> str:
        """The first offending field's reason."""
        return self.errors[0].message

    def prefixed(self, prefix: str) -> DefinitionError:
        """The same errors with `prefix.` put before every field path."""
        fields = [FieldError(f"{prefix}.{e.field}" if prefix else e.field, e.message) for e in self.errors]
        return DefinitionError(fields[0].field, fields[0].message, *fields[1:])


class NotFoundError(AutomationWorkerError):
    """The named object does not exist (or not under the given parent); answered with 404."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class ConflictError(AutomationWorkerError):
    """The request clashes with stored state (a duplicate code, a delete refused); 409."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class IntegrationError(AutomationWorkerError):
    """A call to a connection's integration API failed."""


class TransientIntegrationError(IntegrationError):
    """A failure worth retrying: connection error, timeout, 5xx, 429."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


class PermanentIntegrationError(IntegrationError):
    """A failure that a retry will not fix: a 4xx other than 401/429, a malformed body."""


class ReconnectRequiredError(PermanentIntegrationError):
    """The connection's refresh token was refused (invalid_grant): an operator must reconnect it."""
