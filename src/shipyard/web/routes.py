"""The dashboard's routes under /ui: each one authenticates, calls services, renders a template.

Reads use the viewer's own token (``Actor``), so what a page shows and offers follows their role,
and the services still decide: a refused action renders as a readable message, never a 500.
Fragments (``.../matrix``, ``.../changelog``) are what dashboard.js swaps into a page in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from shipyard.domain.auth import Action
from shipyard.domain.deployments import DeploymentState
from shipyard.errors import AuthError, NotFoundError, ShipyardError
from shipyard.services import (
    artifacts,
    deployments,
    events,
    projects,
    releases,
    rollout_watch,
    rollouts,
    sessions,
)
from shipyard.services.context import Services
from shipyard.web import views
from shipyard.web.pages import PageRoute, render, static_file
from shipyard.web.session import (
    LOGIN_COOKIE,
    Session,
    check_csrf,
    check_origin,
    current_session,
    end_session,
    login_nonce,
    read_form,
    safe_next,
    services,
    set_login_nonce,
    start_session,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)

BUILD_LOG_TAIL = 64 * 1024
EVENTS_PAGE = 100
_WAITING = (DeploymentState.PENDING, DeploymentState.AWAITING_APPROVAL)


def _session(request: Request) -> Session:
    session = current_session(request)
    request.state.session = session  # error pages still show who is logged in
    return session


async def _checked_form(
    request: Request, me: Annotated[Session, Depends(_session)]
) -> dict[str, str]:
    """The posted form, after the origin and CSRF checks every state-changing request passes."""
    check_origin(request)
    form = await read_form(request)
    check_csrf(me.csrf, form.get("csrf"))
    return form


Svc = Annotated[Services, Depends(services)]
Me = Annotated[Session, Depends(_session)]
Form = Annotated[dict[str, str], Depends(_checked_form)]


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _with_notice(url: str, notice: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}notice={notice}"


def _notice(svc: Services, me: Session, notice: str | None) -> str | None:
    """Notices travel as a fixed code and an id (``approved.7``), never as free text in the URL."""
    if not notice:
        return None
    what, _, ident = notice.partition(".")
    if what == "logged-in":
        return f"Logged in as {me.actor.user} ({me.actor.role.value})."
    if what in ("approved", "rejected") and ident.isdigit():
        try:
            d, _ = deployments.get_deployment(svc, me.actor, int(ident))
        except ShipyardError:
            return None
        now = d.state.value.replace("_", " ")
        return f"You {what} deployment {d.id} ({d.candidate} to {d.environment}); it is now {now}."
    return None


# ---- entry, static files, login ------------------------------------------------------------------


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui", status_code=307)


@router.get("/ui/static/{name}")
def static(name: str) -> Response:
    return static_file(name)


@router.get("/ui/login")
def login_form(request: Request, next: str | None = None) -> Response:
    try:
        _session(request)
    except AuthError:
        return _login_page(request, next)
    return _redirect(safe_next(next))


def _login_page(
    request: Request, next: str | None, error: ShipyardError | None = None, status: int = 200
) -> Response:
    nonce = login_nonce(request)
    response = render(
        request,
        "login.html",
        status_code=status,
        title="Log in",
        next=safe_next(next),
        nonce=nonce,
        error=error,
    )
    set_login_nonce(request, response, nonce)
    return response


@router.post("/ui/login")
async def login(request: Request) -> Response:
    check_origin(request)
    form = await read_form(request)
    expected = request.cookies.get(LOGIN_COOKIE)
    if not expected:
        return _login_page(
            request,
            form.get("next"),
            AuthError("the login form expired or cookies are off", hint="enable cookies, reload"),
            400,
        )
    check_csrf(expected, form.get("nonce"))
    token = form.get("token", "").strip()
    try:
        session_id, _ = sessions.open_session(services(request), token)
    except AuthError as exc:
        return _login_page(request, form.get("next"), exc, 401)
    response = _redirect(_with_notice(safe_next(form.get("next")), "logged-in"))
    start_session(request, response, session_id)
    return response


@router.post("/ui/logout")
def logout(form: Form, svc: Svc, me: Me) -> Response:
    sessions.close_session(svc, me.actor, me.session_id)
    response = _redirect("/ui/login")
    end_session(response)
    return response


# ---- projects, releases, candidates -------------------------------------------------------------


@router.get("/ui")
def project_list(request: Request, svc: Svc, me: Me, notice: str | None = None) -> HTMLResponse:
    rows = []
    for p in projects.list_projects(svc, me.actor):
        _, rels = releases.list_releases(svc, me.actor, p.name)
        history = deployments.history(svc, me.actor, p.name, None)
        rows.append(
            {
                "project": p,
                "latest": rels[0][0] if rels else None,
                "releases": len(rels),
                "waiting": sum(1 for d in history if d.state in _WAITING),
                "last": history[0] if history else None,
            }
        )
    return render(
        request,
        "projects.html",
        session=me,
        nav="projects",
        title="Projects",
        rows=rows,
        now=svc.clock.now(),
        notice=_notice(svc, me, notice),
    )


def _matrix_context(svc: Services, me: Session, project: str) -> dict[str, Any]:
    _, placements = deployments.status(svc, me.actor, project)
    _, rels = releases.list_releases(svc, me.actor, project)
    history = deployments.history(svc, me.actor, project, None)
    return {
        "project": project,
        "matrix": views.build_matrix(placements, rels, history),
        "can_approve": me.may(Action.APPROVE),
        "next_url": f"/ui/projects/{project}",
        "now": svc.clock.now(),
    }


@router.get("/ui/projects/{project}")
def project_page(
    project: str, request: Request, svc: Svc, me: Me, notice: str | None = None
) -> HTMLResponse:
    found = projects.show_project(svc, me.actor, project)
    _, rels = releases.list_releases(svc, me.actor, project)
    return render(
        request,
        "project.html",
        session=me,
        nav="projects",
        title=found.name,
        found=found,
        releases=rels,
        notice=_notice(svc, me, notice),
        **_matrix_context(svc, me, project),
    )


@router.get("/ui/projects/{project}/matrix")
def matrix_fragment(project: str, request: Request, svc: Svc, me: Me) -> HTMLResponse:
    return render(request, "_matrix.html", session=me, **_matrix_context(svc, me, project))


@router.get("/ui/projects/{project}/releases/{version}")
def release_page(project: str, version: str, request: Request, svc: Svc, me: Me) -> HTMLResponse:
    view = releases.show_release(svc, me.actor, project, version)
    return render(
        request,
        "release.html",
        session=me,
        nav="projects",
        title=f"{project} {version}",
        project=project,
        view=view,
        now=svc.clock.now(),
    )


@router.get("/ui/projects/{project}/releases/{version}/changelog")
def changelog_fragment(
    project: str, version: str, request: Request, svc: Svc, me: Me
) -> HTMLResponse:
    view = releases.show_release(svc, me.actor, project, version)
    return render(request, "_changelog.html", session=me, project=project, view=view)


def _tail(path: str | None) -> tuple[str, bool]:
    if not path:
        return "", False
    try:
        with Path(path).open("rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - BUILD_LOG_TAIL))
            return fh.read().decode(errors="replace"), size > BUILD_LOG_TAIL
    except OSError:
        return "", False


@router.get("/ui/projects/{project}/candidates/{candidate}")
def candidate_page(
    project: str, candidate: str, request: Request, svc: Svc, me: Me
) -> HTMLResponse:
    found = artifacts.get_candidate(svc, me.actor, project, candidate)
    log, cut = _tail(found.build_log)
    history = [
        d for d in deployments.history(svc, me.actor, project, None) if d.candidate == candidate
    ]
    return render(
        request,
        "candidate.html",
        session=me,
        nav="projects",
        title=candidate,
        project=project,
        candidate=found,
        log=log,
        log_truncated=cut,
        history=history,
        now=svc.clock.now(),
    )


# ---- deployments --------------------------------------------------------------------------------


@router.get("/ui/projects/{project}/deployments")
def history_page(
    project: str,
    request: Request,
    svc: Svc,
    me: Me,
    environment: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    projects.show_project(svc, me.actor, project)
    environment = environment or None
    names, _ = deployments.status(svc, me.actor, project)
    history = deployments.history(svc, me.actor, project, environment)
    now = svc.clock.now()
    return render(
        request,
        "history.html",
        session=me,
        nav="projects",
        title=f"{project} deployments",
        project=project,
        environments=names,
        environment=environment,
        history=history,
        chart=views.daily_chart(history, now),
        now=now,
    )


@router.get("/ui/deployments/{deployment_id}")
def deployment_page(
    deployment_id: int, request: Request, svc: Svc, me: Me, notice: str | None = None
) -> HTMLResponse:
    d, log = deployments.get_deployment(svc, me.actor, deployment_id)
    return render(
        request,
        "deployment.html",
        session=me,
        nav="projects",
        title=f"Deployment {d.id}",
        d=d,
        log=log,
        has_rollout=rollout_watch.has_rollout(svc, me.actor, d.id),
        can_approve=me.may(Action.APPROVE) and d.state in _WAITING,
        now=svc.clock.now(),
        notice=_notice(svc, me, notice),
    )


def _decide(
    svc: Services, me: Session, deployment_id: int, form: dict[str, str], *, approve: bool
) -> Response:
    comment = form.get("comment", "").strip()[:1000]
    d = deployments.decide(svc, me.actor, deployment_id, approve=approve, comment=comment)
    back = safe_next(form.get("next"), f"/ui/deployments/{d.id}")
    return _redirect(_with_notice(back, f"{'approved' if approve else 'rejected'}.{d.id}"))


@router.post("/ui/deployments/{deployment_id}/approve")
def approve(deployment_id: int, svc: Svc, me: Me, form: Form) -> Response:
    return _decide(svc, me, deployment_id, form, approve=True)


@router.post("/ui/deployments/{deployment_id}/reject")
def reject(deployment_id: int, svc: Svc, me: Me, form: Form) -> Response:
    return _decide(svc, me, deployment_id, form, approve=False)


def _rollout_url(project: str, environment: str) -> str:
    return (
        f"/ui/projects/{quote(project, safe='')}/environments/{quote(environment, safe='')}/rollout"
    )


def _rollout_context(
    svc: Services, me: Session, project: str, environment: str, deployment: int | None
) -> dict[str, Any]:
    """The environment's latest rollout (or ``deployment``'s), as the page and its panel show it.

    The panel re-fetches its own URL, so the environment's page picks up the next rollout by
    itself, while ``?deployment=`` keeps that one rollout (see ``views.refresh_ms``).

    The environment matrix (every environment's history and its target's instances) is read only
    when there is no rollout to show: a rollout proves the environment exists, and the panel asks
    again every few seconds."""
    found = rollout_watch.watch(svc, me.actor, project, environment, deployment_id=deployment)
    page = placement = None
    if found is not None:
        page = views.rollout_page(
            found,
            may_steer=rollouts.may_steer(me.actor, project, environment),
            pinned=deployment is not None,
        )
    else:
        names, placements = deployments.status(svc, me.actor, project)
        if environment not in names:
            raise NotFoundError(f"environment {environment!r} of {project} not found")
        [placement] = [p for p in placements if p.environment == environment]
    url = _rollout_url(project, environment)
    return {
        "project": project,
        "environment": environment,
        "placement": placement,
        "page": page,
        "rollout_url": url,
        "panel_url": f"{url}/panel" + (f"?deployment={deployment}" if deployment else ""),
        "refresh_ms": views.refresh_ms(
            page.rollout if page else None, pinned=deployment is not None
        ),
        "now": svc.clock.now(),
    }


_STEERED = {"promote": "promoted", "pause": "paused", "resume": "resumed", "abort": "aborted"}


def _rollout_notice(notice: str | None, page: views.RolloutPage | None) -> str | None:
    """``paused.3``: you paused rollout 3; said only on that rollout's page."""
    what, _, ident = (notice or "").partition(".")
    if page is None or what not in _STEERED.values() or ident != str(page.rollout.id):
        return None
    r = page.rollout
    return f"You {what} the rollout of {r.canary}; it is now {r.phase.value.replace('_', ' ')}."


@router.get("/ui/projects/{project}/environments/{environment}/rollout")
def rollout_page(
    project: str,
    environment: str,
    request: Request,
    svc: Svc,
    me: Me,
    deployment: Annotated[int | None, Query(ge=1)] = None,
    notice: str | None = None,
) -> HTMLResponse:
    context = _rollout_context(svc, me, project, environment, deployment)
    return render(
        request,
        "rollout.html",
        session=me,
        nav="projects",
        title=f"{project} {environment} rollout",
        notice=_rollout_notice(notice, context["page"]),
        **context,
    )


@router.get("/ui/projects/{project}/environments/{environment}/rollout/panel")
def rollout_panel(
    project: str,
    environment: str,
    request: Request,
    svc: Svc,
    me: Me,
    deployment: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    context = _rollout_context(svc, me, project, environment, deployment)
    return render(request, "_rollout.html", session=me, **context)


@router.post("/ui/projects/{project}/environments/{environment}/rollout/{action}")
def steer_rollout(
    project: str,
    environment: str,
    action: str,
    svc: Svc,
    me: Me,
    form: Form,
) -> Response:
    """One human command; the services check the role and the phase, the engine does the rest."""
    if action not in _STEERED:
        raise NotFoundError(f"no rollout command {action!r}", hint="promote, pause, resume, abort")
    if action == "promote":
        r = rollouts.promote(svc, me.actor, project, environment, full=form.get("full") == "1")
    elif action == "pause":
        r = rollouts.pause(svc, me.actor, project, environment)
    elif action == "resume":
        r = rollouts.resume(svc, me.actor, project, environment)
    else:
        reason = form.get("reason", "").strip()[:500]
        r = rollouts.abort(svc, me.actor, project, environment, reason=reason)
    return _redirect(_with_notice(_rollout_url(project, environment), f"{_STEERED[action]}.{r.id}"))


# ---- audit log ----------------------------------------------------------------------------------


@router.get("/ui/events")
def events_page(
    request: Request,
    svc: Svc,
    me: Me,
    project: Annotated[str | None, Query(max_length=100)] = None,
    kind: Annotated[str | None, Query(max_length=100)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = EVENTS_PAGE,
) -> HTMLResponse:
    project, kind = project or None, (kind or "").strip() or None
    if project is not None:
        projects.show_project(svc, me.actor, project)
    page = events.newest_events(
        svc, me.actor, project=project, kind=kind, before=before, limit=limit
    )
    return render(
        request,
        "events.html",
        session=me,
        nav="events",
        title="Audit log",
        events=page.events,
        older=page.older,
        kinds=events.event_kinds(svc, me.actor, project=project),
        projects=[p.name for p in projects.list_projects(svc, me.actor)],
        project=project,
        kind=kind,
        before=before,
        limit=limit,
        now=svc.clock.now(),
    )
