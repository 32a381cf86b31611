"""THE mapping from errors to HTTP: one table, every error body RFC 9457 problem+json.

Our own errors, FastAPI's request validation (bad fields, unparseable JSON), Starlette's routing
answers (404 unknown route, 405) and the body-size cap (413) all leave here in one shape, and
every route documents it in the OpenAPI (``PROBLEM_RESPONSES``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard.api.schemas import Problem
from shipyard.errors import ErrorCode, ShipyardError

log = logging.getLogger(__name__)

STATUS: dict[ErrorCode, int] = {
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNKNOWN_SHA: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.VERSION_EXISTS: 409,
    ErrorCode.PICK_CONFLICT: 409,
    ErrorCode.ALREADY_PICKED: 409,
    ErrorCode.LEASE_LOST: 409,
    ErrorCode.INVALID: 422,
    ErrorCode.CONFIG_INVALID: 422,
    ErrorCode.REFUSED: 409,
    ErrorCode.NOT_ON_MAINLINE: 409,
    ErrorCode.MISSING_PICK: 409,
    ErrorCode.GATE_CLOSED: 409,
    ErrorCode.FROZEN: 409,
    ErrorCode.SEPARATION_OF_DUTIES: 403,
    ErrorCode.VETOED: 409,
    ErrorCode.INVALID_TRANSITION: 409,
    ErrorCode.BUILD_FAILED: 409,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.INTEGRITY: 409,
    ErrorCode.DIGEST_MISMATCH: 409,
    ErrorCode.ADAPTER: 502,
    # outcomes a failed deployment records (deployments.failure_code); raised, they are conflicts
    ErrorCode.DEPLOYMENT_FAILED: 409,
    ErrorCode.ROLLED_BACK: 409,
}

PROBLEM = "application/problem+json"

# codes of the answers that are not a ShipyardError (routing, transport)
_HTTP_CODES = {
    400: ErrorCode.INVALID.value,
    404: ErrorCode.NOT_FOUND.value,
    405: "method_not_allowed",
    413: "too_large",
    500: "internal",
}
_DESCRIPTIONS = {
    401: "no or unknown token",
    403: "the token's role does not allow it",
    404: "unknown route or object",
    409: "a rule or the current state refuses it",
    413: "the request body is larger than the server accepts",
    422: "the request is invalid (each field named in `errors`)",
    502: "git, a build, a router or a target failed",
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "model": Problem, "content": {PROBLEM: {}}}
    for status, text in _DESCRIPTIONS.items()
}
"""Documented on every API route (FastAPI puts the model under each listed media type)."""


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def document(app: FastAPI) -> None:
    """Serve the OpenAPI with every error answer under problem+json only (FastAPI also lists the
    model under application/json, which the API never sends for an error; a route that
    describes one of its errors in words gets the schema too)."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = make()
            for path in spec.get("paths", {}).values():
                for operation in path.values():
                    for status, answer in operation.get("responses", {}).items():
                        if str(status)[:1] in "45":
                            answer["content"] = {PROBLEM: {"schema": _PROBLEM_REF}}
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"https://shipyard.dev/problems/{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
        **{k: v for k, v in extra.items() if v is not None},
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _shipyard_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ShipyardError)
    return problem(
        STATUS.get(exc.code, 400),
        exc.code.value,
        exc.message,
        hint=exc.hint,
        details=exc.details or None,
    )


def _field(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc if p not in ("body", "path", "query", "header"))


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    found = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in found):
        bad = next(e for e in found if e.get("type") == "json_invalid")
        reason = (bad.get("ctx") or {}).get("error", "invalid JSON")
        return problem(
            422,
            ErrorCode.INVALID.value,
            f"the body is not valid JSON: {reason}",
            hint="send a JSON document with Content-Type: application/json",
        )
    errors = [
        {"field": _field(e.get("loc", ())), "in": _place(e), "reason": str(e.get("msg"))}
        for e in found[:20]
    ]
    first = errors[0] if errors else {"field": "", "reason": "invalid request"}
    detail = f"{first['field']}: {first['reason']}" if first["field"] else first["reason"]
    return problem(422, ErrorCode.INVALID.value, detail, errors=errors)


def _place(e: Any) -> str:
    loc = e.get("loc", ())
    return str(loc[0]) if loc else "body"


def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    response = problem(exc.status_code, code, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its traceback, answered as a problem that names no internals."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal", "an unexpected error; the server log has the details")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ShipyardError, _shipyard_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    document(app)
