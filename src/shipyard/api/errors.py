"""THE mapping from domain error codes to HTTP: one table, problem+json bodies (RFC 9457)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shipyard.errors import ErrorCode, ShipyardError

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
        STATUS.get(exc.code, 400), exc.code.value, exc.message, hint=exc.hint, details=exc.details
    )


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    detail = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return problem(422, ErrorCode.INVALID.value, detail)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ShipyardError, _shipyard_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
