"""Domain errors. Each carries its meaning; ``api.errors`` maps them to HTTP."""

from __future__ import annotations


class BorderwatchError(Exception):
    """Base of every error the service raises on purpose."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigurationError(BorderwatchError):
    code = "configuration_error"


class NotAuthenticated(BorderwatchError):
    status_code = 401
    code = "not_authenticated"


class NotAuthorised(BorderwatchError):
    status_code = 403
    code = "not_authorised"


class NotFound(BorderwatchError):
    status_code = 404
    code = "not_found"


class Conflict(BorderwatchError):
    status_code = 409
    code = "conflict"


class InvalidInput(BorderwatchError):
    status_code = 422
    code = "invalid_input"


class InvalidPayload(BorderwatchError):
    """An MQTT payload that cannot become a detection; it goes to the dead letters."""

    code = "invalid_payload"


class TooManyRequests(BorderwatchError):
    """Refused for now; ``retry_after`` says in how many seconds to try again (HTTP ``Retry-After``)."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, **details):
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after


class ServiceBusy(BorderwatchError):
    """The service is at a bound it keeps on purpose (e.g. concurrent password checks); try again soon."""

    status_code = 503
    code = "service_busy"

    def __init__(self, message: str, *, retry_after: int = 1, **details):
        super().__init__(message, **details)
        self.retry_after = retry_after
