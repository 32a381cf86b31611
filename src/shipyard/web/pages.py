"""Rendering: the Jinja2 environment, security headers, and errors as readable pages.

Every dashboard route uses ``PageRoute``: a ``ShipyardError`` raised by a service (or by the
session checks) becomes an HTML page with the same HTTP status the REST API would give it, and a
missing or revoked session becomes a redirect to the login form.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Coroutine
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from shipyard import __version__
from shipyard.errors import (
    AdapterError,
    AuthError,
    ConflictError,
    ErrorCode,
    IntegrityError,
    InvalidError,
    NotFoundError,
    PermissionDenied,
    RefusedError,
    ShipyardError,
)
from shipyard.web.session import LoginRequired

STATIC_FILES = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
PARTIAL_HEADER = "x-shipyard-partial"  # sent by dashboard.js when it fetches a fragment

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def http_status(exc: ShipyardError) -> int:
    """The status the REST API gives the same error (tests/integration/web check they agree)."""
    if exc.code is ErrorCode.SEPARATION_OF_DUTIES:
        return 403
    for kind, status in (
        (AuthError, 401),
        (PermissionDenied, 403),
        (NotFoundError, 404),
        (InvalidError, 422),
        (ConflictError, 409),
        (RefusedError, 409),
        (IntegrityError, 409),
        (AdapterError, 502),
    ):
        if isinstance(exc, kind):
            return status
    return 400


def _static_digest(name: str) -> str:
    data = resources.files("shipyard.web").joinpath("static", name).read_bytes()
    return hashlib.sha256(data).hexdigest()[:12]


_DIGESTS = {name: _static_digest(name) for name in STATIC_FILES}


def static_url(name: str) -> str:
    return f"/ui/static/{name}?v={_DIGESTS[name]}"


def static_file(name: str) -> Response:
    if name not in STATIC_FILES:
        raise NotFoundError(f"no static file {name!r}")
    data = resources.files("shipyard.web").joinpath("static", name).read_bytes()
    return Response(
        data,
        media_type=STATIC_FILES[name],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "—"
    seconds = int((now - value).total_seconds())
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = (end - start).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _short(sha: str | None, n: int = 12) -> str:
    return (sha or "")[:n]


def _digest(value: str) -> str:
    algo, _, hexdigits = value.partition(":")
    return f"{algo}:{hexdigits[:16]}…" if hexdigits else value


def _payload(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def _compact(value: dict[str, Any]) -> str:
    """Evidence on one line, as ``shipyard rollout explain`` prints it."""
    return json.dumps(value, sort_keys=True, default=str, separators=(", ", ": "))


ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("shipyard.web", "templates"),
    autoescape=jinja2.select_autoescape(default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(
    when=_when,
    short=_short,
    digest=_digest,
    payload=_payload,
    compact=_compact,
    urlquote=lambda v: quote(str(v), safe=""),
)
ENV.globals.update(static_url=static_url, ago=_ago, duration=_duration, version=__version__)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("session", None)
    context.setdefault("notice", None)
    context.setdefault("error", None)
    context.setdefault("nav", None)
    context.setdefault("title", "Shipyard")
    html = ENV.get_template(template).render(request=request, status_code=status_code, **context)
    return HTMLResponse(html, status_code=status_code, headers=HEADERS)


def error_page(request: Request, exc: ShipyardError, session: Any = None) -> Response:
    if isinstance(exc, LoginRequired):
        if request.method != "GET" or request.headers.get(PARTIAL_HEADER) is not None:
            return RedirectResponse("/ui/login", status_code=303)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("sec-fetch-site") == "cross-site":
            # a link from another site: the SameSite=Strict cookie stayed home. Ask again from
            # here (a same-site navigation carries it); with no session that lands on the login.
            return render(request, "bounce.html", target=target, title="Shipyard")
        return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)
    return render(
        request,
        "error.html",
        status_code=http_status(exc),
        session=session,
        error=exc,
        title=exc.code.value.replace("_", " "),
    )


class PageRoute(APIRoute):
    """A route whose ShipyardErrors become HTML pages (or a redirect to log in)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except ShipyardError as exc:
                return error_page(request, exc, getattr(request.state, "session", None))

        return page
