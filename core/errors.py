"""Domain errors raised by services.

Services do not know about HTTP. The API maps each class to a status (see
``core.api.exception_handler``); portal views show ``message`` next to the form field
named in ``fields``.
"""


class DomainError(Exception):
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = {key: value if isinstance(value, list) else [value] for key, value in (fields or {}).items()}


class Invalid(DomainError):
    """The input breaks a rule of the program (HTTP 400)."""


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    """The input is fine but the state of the program refuses it now (HTTP 409)."""

    code = "conflict"


class Unprocessable(DomainError):
    """A request that can never succeed as sent, such as a reused idempotency key (HTTP 422)."""

    code = "unprocessable"
