"""The ``Idempotency-Key`` header on every POST (IETF draft-ietf-httpapi-idempotency-key).

A pure ASGI middleware, so the route's response streams through unchanged while it is kept; the
rules (replay, busy, mismatch, expiry) are in services/idempotency.py."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.api.errors import problem
from shipyard.errors import ErrorCode
from shipyard.services import idempotency
from shipyard.services.context import Services

HEADER = "idempotency-key"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as the draft's sf-string


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.svc = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not _KEY.fullmatch(key):
            bad = problem(
                422, ErrorCode.INVALID.value, "Idempotency-Key must be 1-255 visible ASCII chars"
            )
            await bad(scope, receive, send)
            return
        body = await _body(receive)
        credential = headers.get("authorization") or headers.get("cookie") or ""
        actor = hashlib.sha256(credential.encode()).hexdigest()
        query = scope.get("query_string", b"").decode(errors="replace")
        route = f"POST {scope['path']}" + (f"?{query}" if query else "")
        digest = hashlib.sha256(route.encode() + b"\n" + body).hexdigest()
        found = await run_in_threadpool(
            idempotency.claim, self.svc, actor, key, route=route, request_hash=digest
        )
        match found:
            case idempotency.Replay(stored):
                await _replay(stored.status or 200, stored.content_type, stored.response, send)
            case idempotency.Busy():
                await problem(
                    409,
                    ErrorCode.CONFLICT.value,
                    f"a request with Idempotency-Key {key} is running",
                )(scope, receive, send)
            case idempotency.Mismatch(other):
                await problem(
                    422,
                    ErrorCode.INVALID.value,
                    f"Idempotency-Key {key} was used for another request ({other} or another body)",
                )(scope, receive, send)
            case idempotency.Proceed():
                await self._first(scope, _replaying(body, receive), send, actor, key)

    async def _first(
        self, scope: Scope, receive: Receive, send: Send, actor: str, key: str
    ) -> None:
        status, content_type, chunks = 500, "", []

        async def keep(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = int(message["status"])
                content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
            await send(message)

        try:
            await self.app(scope, receive, keep)
        except BaseException:
            await run_in_threadpool(idempotency.forget, self.svc, actor, key)
            raise
        await run_in_threadpool(
            idempotency.finish,
            self.svc,
            actor,
            key,
            status=status,
            content_type=content_type,
            body=b"".join(chunks),
        )


async def _body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _replaying(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _replay(status: int, content_type: str, text: str, send: Send) -> None:
    body = text.encode()
    headers = [(b"content-length", str(len(body)).encode()), (b"idempotent-replayed", b"true")]
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def document(app: FastAPI) -> None:
    """Name the header on every POST of the OpenAPI document (the middleware is invisible)."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = make()
        for ops in schema.get("paths", {}).values():
            post = ops.get("post")
            if post is not None:
                post.setdefault("parameters", []).append(_PARAMETER)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe: the first response to this key (per caller, 24 h) is replayed to a "
        "retry of the same request; the key on another request is a 422, while the first one "
        "still runs a 409."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}
