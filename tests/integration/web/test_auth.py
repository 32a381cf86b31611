"""Logging in and out of the dashboard, and what happens without a valid session."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from shipyard.adapters.clock import FixedClock
from shipyard.domain.auth import SYSTEM
from shipyard.services import events, tokens
from tests.integration.web.conftest import NONCE, Shop, client_of, csrf_of
from tests.support.runtime import memory_runtime, role_tokens


def test_root_leads_to_the_dashboard_and_the_dashboard_to_the_login(shop: Shop) -> None:
    client = shop.client()
    assert client.get("/").headers["location"] == "/ui"
    page = client.get("/ui/projects/shop?notice=x")
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?next=%2Fui%2Fprojects%2Fshop%3Fnotice%3Dx"
    form = client.get("/ui/login")
    assert form.status_code == 200
    assert 'type="password"' in form.text and NONCE.search(form.text)


def test_login_sets_a_strict_httponly_cookie_and_logout_clears_it(shop: Shop) -> None:
    client = shop.client()
    nonce = NONCE.search(client.get("/ui/login").text)
    assert nonce
    done = client.post(
        "/ui/login",
        data={"token": shop.tokens["viewer"], "nonce": nonce.group(1), "next": "/ui/events"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/ui/events?notice=logged-in"
    cookie = next(
        c for c in done.headers.get_list("set-cookie") if c.startswith("shipyard_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    page = client.get("/ui?notice=logged-in")
    assert page.status_code == 200
    assert "Logged in as vera (viewer)." in page.text
    assert "vera" in page.text and "role-viewer" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

    out = client.post("/ui/logout", data={"csrf": csrf_of(client)})
    assert (out.status_code, out.headers["location"]) == (303, "/ui/login")
    assert client.get("/ui").status_code == 303  # logged out: back to the login form


def test_the_session_cookie_holds_a_session_id_never_the_token(shop: Shop) -> None:
    client = shop.client("viewer")
    session_id = client.cookies["shipyard_session"]
    assert session_id.startswith("shs_") and shop.tokens["viewer"] not in session_id
    with shop.runtime.engine.connect() as conn:
        stored = conn.execute(text("SELECT id_hash, expires_at FROM sessions")).all()
    assert session_id not in {row.id_hash for row in stored}  # only its hash is kept
    assert tokens.hash_token(session_id) in {row.id_hash for row in stored}
    as_bearer = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {session_id}"})
    assert as_bearer.status_code == 401  # a session id is no API token


def test_logout_ends_the_session_for_a_copy_of_the_cookie_too(shop: Shop) -> None:
    """Before, the cookie was the token itself: logging out revoked nothing."""
    client = shop.client("deployer")
    stolen = shop.client()
    stolen.cookies.set("shipyard_session", client.cookies["shipyard_session"], path="/ui")
    assert stolen.get("/ui").status_code == 200
    client.post("/ui/logout", data={"csrf": csrf_of(client)})
    assert stolen.get("/ui").headers["location"].startswith("/ui/login")
    assert shop.client("deployer").get("/ui").status_code == 200  # the token itself still works
    kinds = [e.kind for e in events.newest_events(shop.runtime.services, SYSTEM).events]
    assert "session.ended" in kinds and "session.started" in kinds


def test_a_session_expires_after_twelve_hours(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    with memory_runtime(tmp_path, clock=clock) as rt:
        token = role_tokens(rt.services)["viewer"]
        client = client_of(rt, token)
        clock.advance(hours=11, minutes=59)
        assert client.get("/ui").status_code == 200
        clock.advance(minutes=2)
        assert client.get("/ui").headers["location"].startswith("/ui/login")


def test_a_logged_in_user_visiting_login_goes_on(shop: Shop) -> None:
    client = shop.client("viewer")
    answer = client.get("/ui/login?next=/ui/events")
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/events")


def test_a_bad_token_is_refused_with_a_message(shop: Shop) -> None:
    client = shop.client()
    nonce = NONCE.search(client.get("/ui/login").text)
    assert nonce
    done = client.post("/ui/login", data={"token": "shy_not-a-token", "nonce": nonce.group(1)})
    assert done.status_code == 401
    assert "unknown or revoked API token" in done.text
    assert 'class="flash flash-error"' in done.text
    assert not any(c.startswith("shipyard_session=") for c in done.headers.get_list("set-cookie"))
    assert client.get("/ui").status_code == 303


def test_login_without_the_form_nonce_is_refused(shop: Shop) -> None:
    """Login CSRF: a page elsewhere cannot log the browser in to the attacker's account."""
    client = shop.client()
    client.get("/ui/login")  # the nonce cookie is set, but the attacker cannot read it
    forged = client.post("/ui/login", data={"token": shop.tokens["viewer"], "nonce": "guess"})
    assert forged.status_code == 403
    assert "security token is missing or stale" in forged.text
    fresh = shop.client()
    no_cookie = fresh.post("/ui/login", data={"token": shop.tokens["viewer"], "nonce": "x"})
    assert no_cookie.status_code == 400
    assert "cookies" in no_cookie.text


def test_a_revoked_token_ends_the_session(shop: Shop) -> None:
    client = shop.client("approver")
    assert client.get("/ui").status_code == 200
    admin = shop.client("admin")
    bob = next(t for t in tokens.list_tokens(shop.runtime.services, SYSTEM) if t["user"] == "bob")
    tokens.revoke_token(shop.runtime.services, SYSTEM, bob["id"])
    assert client.get("/ui/projects/shop").headers["location"].startswith("/ui/login")
    assert admin.get("/ui").status_code == 200
    with shop.runtime.engine.connect() as conn:
        live = conn.execute(
            text("SELECT count(*) FROM sessions WHERE token_id = :t AND revoked_at IS NULL"),
            {"t": bob["id"]},
        ).scalar_one()
    assert live == 0  # revoking the token revoked its sessions, not just hid them


def test_logging_in_redirects_only_within_the_dashboard(shop: Shop) -> None:
    client = shop.client()
    nonce = NONCE.search(client.get("/ui/login").text)
    assert nonce
    done = client.post(
        "/ui/login",
        data={"token": shop.tokens["viewer"], "nonce": nonce.group(1), "next": "//evil.test/"},
    )
    assert done.headers["location"] == "/ui?notice=logged-in"


def test_static_files_are_served_with_their_types(shop: Shop) -> None:
    client = shop.client()
    css = client.get("/ui/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = client.get("/ui/static/dashboard.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert client.get("/ui/static/../pages.py").status_code == 404
    assert client.get("/ui/static/secret.txt").status_code == 404
    page = client.get("/ui/login").text
    assert "/ui/static/dashboard.css?v=" in page and "/ui/static/dashboard.js?v=" in page


def test_a_link_from_another_site_is_followed_again_from_here(shop: Shop) -> None:
    """SameSite=Strict keeps the cookie off cross-site navigations; the page asks once more."""
    browser = shop.client()  # what arrives from another site: no cookie
    bounced = browser.get("/ui/projects/shop?x=1", headers={"Sec-Fetch-Site": "cross-site"})
    assert bounced.status_code == 200
    assert '<meta http-equiv="refresh" content="0;url=/ui/projects/shop?x=1">' in bounced.text
    again = browser.get("/ui/projects/shop?x=1", headers={"Sec-Fetch-Site": "same-origin"})
    assert again.status_code == 303  # still no session: now the login form, no loop
    assert again.headers["location"].startswith("/ui/login?next=")
