"""Logging in and out of the dashboard, and what happens without a valid session."""

from __future__ import annotations

from shipyard.domain.auth import SYSTEM
from shipyard.services import tokens
from tests.integration.web.conftest import NONCE, Shop, csrf_of


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
