"""Errors to HTTP statuses, in one table.

Every refusal is a JSON body ``{"error": "<sentence>"}`` (:class:`Refusal`) with the status
below; a refused request changes nothing. Request bodies that do not match their model are 422
with the first problem as a sentence (the field and what was wrong with it), a body that is
not JSON at all is 422 too. What Starlette refuses before a route runs (no such endpoint, a
method the endpoint does not take) and the ``HTTPException`` of routers mounted beside the API
get the same body, with the sentences of :data:`SENTENCE_OF` where the router gave none. A
failure the service did not foresee is logged once here and answered 500 without its details.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from dispatch.errors import (
    CaseConflict,
    CaseNotFound,
    DispatchError,
    Forbidden,
    InvalidInput,
    MalformedEvent,
    Shredded,
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
    Shredded: 410,
}


SENTENCE_OF: dict[int, Callable[[Request, HTTPException], str]] = {
    404: lambda request, _: (
        f"no endpoint is at {request.url.path}; /openapi.json lists the endpoints"
    ),
    405: lambda request, error: (
        f"{request.method} is not allowed on {request.url.path}; it allows "
        f"{(error.headers or {}).get('Allow', 'other methods')}"
    ),
}
"""Sentences for what Starlette refuses with no words of its own, by status."""


class Refusal(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: str


REFUSALS: dict[int | str, dict[str, object]] = {
    status: {"model": Refusal, "description": description}
    for status, description in (
        (401, "No bearer token, or one wayhome does not know."),
        (403, "The token's role, or the token itself, may not do this."),
        (404, "No case or subscriber has this id."),
        (409, "The case exists already, is closed, is not resolved yet, or not dispatched yet."),
        (422, "The request is malformed or out of range."),
    )
}
"""The refusals an authorized endpoint may answer, for its OpenAPI ``responses``."""


def status_of(error: DispatchError) -> int:
    """The HTTP status of a dispatch error (400 for a kind not in the table)."""
    for kind in type(error).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return 400


def not_json_sentence(reason: str, at: object) -> str:
    """The sentence for a request body that is not JSON: what the parser said, and where."""
    return f"the request body is not valid JSON: {reason.lower()} at character {at}"


def validation_sentence(error: RequestValidationError) -> str:
    """The first problem of a request body as one sentence."""
    first = error.errors()[0]
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "it cannot be parsed")
        return not_json_sentence(str(reason), first.get("loc", ("body", 0))[-1])
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

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
        worded = error.detail if isinstance(error.detail, str) else ""
        if not worded or worded == HTTPStatus(error.status_code).phrase:
            sentence = SENTENCE_OF.get(error.status_code)
            worded = sentence(request, error) if sentence else worded or "the request was refused"
        return JSONResponse({"error": worded}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def _unforeseen(request: Request, error: Exception) -> JSONResponse:
        logger.exception("request failed method=%s path=%s", request.method, request.url.path)
        return JSONResponse(
            {"error": "the service failed on this request; it is logged, try again later"},
            status_code=500,
        )
