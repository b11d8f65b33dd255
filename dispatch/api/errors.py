"""Errors to HTTP statuses, in one table.

Every refusal is a JSON body ``{"error": "<sentence>"}`` with the status below; a refused
request changes nothing. Request bodies that do not match their model are 422 with the first
problem as a sentence (the field and what was wrong with it).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dispatch.errors import (
    CaseConflict,
    CaseNotFound,
    DispatchError,
    Forbidden,
    InvalidInput,
    MalformedEvent,
    SubscriberNotFound,
    Unauthenticated,
)

logger = logging.getLogger(__name__)

STATUS_OF: dict[type[DispatchError], int] = {
    InvalidInput: 422,
    MalformedEvent: 422,
    CaseNotFound: 404,
    SubscriberNotFound: 404,
    CaseConflict: 409,
    Unauthenticated: 401,
    Forbidden: 403,
}


def status_of(error: DispatchError) -> int:
    """The HTTP status of a dispatch error (400 for a kind not in the table)."""
    for kind in type(error).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return 400


def validation_sentence(error: RequestValidationError) -> str:
    """The first problem of a request body as one sentence."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
    return f"{where or 'the body'}: {message}" if where else message


def install(app: FastAPI) -> None:
    """Install the handlers that turn errors into refusals."""

    @app.exception_handler(DispatchError)
    async def _dispatch_error(request: Request, error: DispatchError) -> JSONResponse:
        status = status_of(error)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": str(error)}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_sentence(error)}, status_code=422)
