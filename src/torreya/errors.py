"""One error hierarchy. Services raise; `app.py` has the one handler.

`message` is an English msgid translated at render time into the user's language; `params`
fill its placeholders. The `code` is API and what tests assert.
"""

from __future__ import annotations

from typing import Any

from torreya.i18n import gettext


class DomainError(Exception):
    status = 400
    code = "bad_request"
    message = "The request could not be completed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        field: str | None = None,
        **params: Any,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.field = field
        self.params = params
        super().__init__(self.code, self.message, params)

    def text(self) -> str:
        """The message in the request's language, its placeholders filled."""
        return gettext(self.message, **self.params) if self.params else gettext(self.message)


class InvalidRequestError(DomainError):
    status = 422
    code = "invalid_request"
    message = "The request is not valid."


class UnauthenticatedError(DomainError):
    status = 401
    code = "unauthenticated"
    message = "Please log in first."


class InvalidCredentialsError(DomainError):
    status = 401
    code = "invalid_credentials"
    message = "Wrong username or password."


class TooManyAttemptsError(DomainError):
    status = 429
    code = "too_many_attempts"
    message = "Too many failed attempts. Please wait a few minutes and try again."


class ForbiddenError(DomainError):
    status = 403
    code = "forbidden"
    message = "You are not allowed to do this."


class NotFoundError(DomainError):
    status = 404
    code = "not_found"
    message = "Not found."


class ConflictError(DomainError):
    status = 409
    code = "conflict"
    message = "This conflicts with the current state."


class PayloadTooLargeError(DomainError):
    status = 413
    code = "payload_too_large"
    message = "The request is too large."


class UnavailableError(DomainError):
    """The database could not be reached or gave up waiting; nothing was changed."""

    status = 503
    code = "unavailable"
    message = ("The service is briefly unavailable. Nothing was changed; please try again in a "
               "moment.")
    retry_after = 5
