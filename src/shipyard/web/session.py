"""Who is looking: a server-side session id in an HttpOnly cookie, and the CSRF checks of forms.

Logging in with an API token starts a session kept in the database (services/sessions.py); the
cookie holds only its id (``shs_...``), never the token. Logging out ends the session, revoking
its token ends all of the token's sessions, and a session expires after 12 hours. Forms are
protected twice:

- the cookies are ``SameSite=Strict``, so a cross-site request carries no session at all;
- every form carries a ``csrf`` field, an HMAC of a fixed label keyed by the session id, which a
  page of another origin can neither read nor compute; and a request whose ``Origin`` header names
  another origin is refused outright.

The login form has no session yet, so it uses a double-submit token: a random value set in a
short-lived cookie and echoed in a hidden field.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request
from fastapi.responses import Response

from shipyard.domain.auth import Action, Actor
from shipyard.errors import AuthError, PermissionDenied
from shipyard.services import sessions
from shipyard.services.context import Services

SESSION_COOKIE = "shipyard_session"
LOGIN_COOKIE = "shipyard_login"
COOKIE_PATH = "/ui"
SESSION_MAX_AGE = int(sessions.DEFAULT_TTL.total_seconds())  # as long as the server keeps it
MAX_FORM_BYTES = 64 * 1024


class LoginRequired(AuthError):
    """No session, or its token was revoked: the page answers with a redirect to the login form."""


class CsrfRefused(PermissionDenied):
    """A form came without the right CSRF token or from another origin."""


@dataclass(frozen=True)
class Session:
    """The authenticated viewer of a page and what the page may offer them."""

    actor: Actor
    session_id: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.session_id)

    def may(self, action: Action) -> bool:
        try:
            self.actor.require(action)
        except PermissionDenied:
            return False
        return True


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"shipyard-dashboard-csrf", hashlib.sha256).hexdigest()


def current_session(request: Request) -> Session:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        raise LoginRequired("please log in with an API token")
    try:
        actor = sessions.authenticate(services(request), session_id)
    except AuthError as exc:
        raise LoginRequired(exc.message) from exc
    return Session(actor, session_id)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def start_session(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=SESSION_MAX_AGE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)


def login_nonce(request: Request) -> str:
    """The double-submit token of the login form: the cookie's, or a fresh one."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def set_login_nonce(request: Request, response: Response, nonce: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def check_origin(request: Request) -> None:
    """Refuse a form posted by a page of another origin (browsers send Origin on every POST)."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    if urlsplit(origin).netloc != request.headers.get("host", request.url.netloc):
        raise CsrfRefused(f"refused a form sent from another site ({origin})")


def check_csrf(expected: str, given: str | None) -> None:
    if not given or not hmac.compare_digest(expected, given):
        raise CsrfRefused(
            "the form's security token is missing or stale",
            hint="reload the page and try again",
        )


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (the last value of a repeated key)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise CsrfRefused("the form is too large")
    return dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))


def safe_next(target: str | None, default: str = "/ui") -> str:
    """Only ever redirect within the dashboard (no open redirect to another site)."""
    if not target or not target.startswith("/ui") or target.startswith("//") or "\\" in target:
        return default
    return target
