"""Every error the service answers: a JSON body `{"error": {"code", "message"}}`, stable codes.

A refusal is not an error: a refused call is a 200 answer carrying the
`Refusal`. Errors are for requests the service cannot take: bad input,
missing or wrong credentials, a role the account does not have.
"""

from __future__ import annotations

from typing import Literal, get_args

from starlette.responses import JSONResponse

ErrorCode = Literal[
    "invalid_request",  # 400: the body or a parameter is not what the endpoint takes
    "unsupported_media_type",  # 400 (AuthZEN) / 415: the body is not application/json
    "unauthenticated",  # 401: no credential, or one that is not valid
    "forbidden",  # 403: the account's kind or role may not do this
    "csrf_failed",  # 403: a form without the page's CSRF token
    "not_found",  # 404: no such thing for this account
    "conflict",  # 409: an approval that is no longer pending, or expired
    "payload_too_large",  # 413
    "too_many_failures",  # 429: too many failed sign-ins (`Retry-After` says how long to wait)
    "bundle_invalid",  # 400: a reload was refused; the running bundle stays
    "unavailable",  # 503: the store cannot be reached
]
ERROR_CODES: tuple[ErrorCode, ...] = get_args(ErrorCode)


class ApiError(Exception):
    """Raised by a handler; answered as the JSON error body with its status."""

    def __init__(
        self, status: int, code: ErrorCode, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        answer = error_response(self.status, self.code, self.message)
        answer.headers.update(self.headers)
        return answer


def error_response(status: int, code: ErrorCode, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )
