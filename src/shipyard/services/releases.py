"""Release use cases: cut a release from the mainline, pick fixes onto it, read releases back.

Git changes happen first and are compensated (branch deleted, pick reverted) when the database
transaction fails, so git and the database never disagree about what exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shipyard.config.loader import decode_config
from shipyard.domain import releases as rules
from shipyard.domain.auth import Action, Actor
from shipyard.domain.changelog import ChangelogEntry
from shipyard.domain.releases import Candidate, CandidateStatus, Pick, Project, Release
from shipyard.domain.versions import (
    Bump,
    Scheme,
    Version,
    candidate_name,
    next_version,
    parse_existing,
    parse_version,
)
from shipyard.errors import NotFoundError
from shipyard.ports.git import GitRepository, Identity
from shipyard.ports.repositories import UnitOfWork
from shipyard.services.config_check import check_servable
from shipyard.services.context import Services
from shipyard.services.project_config import ReleaseSettings, release_settings

BUILD_JOB = "build"
CHANGELOG_LIMIT = 2000
CONFIG_FILE = "shipyard.yaml"


@dataclass(frozen=True)
class ReleaseView:
    project: Project
    release: Release
    candidates: Sequence[Candidate]
    changelog: Sequence[ChangelogEntry]
    previous_version: str | None
    changelog_truncated: bool


def get_project(uow: UnitOfWork, name: str) -> Project:
    project = uow.projects.get(name)
    if project is None:
        raise NotFoundError(
            f"project {name!r} not found", hint="list them with `shipyard project list`"
        )
    return project


def get_release(uow: UnitOfWork, project: Project, version: str) -> Release:
    release = uow.releases.get_release(project, version)
    if release is None:
        raise NotFoundError(f"release {version} of {project.name} not found")
    return release


def _versions(releases: Sequence[Release], scheme: Scheme) -> dict[str, Version]:
    """Known releases that fit the scheme, by their version text."""
    return {str(v): v for v in parse_existing((r.version for r in releases), scheme)}


def _choose_version(
    settings: ReleaseSettings,
    known: dict[str, Version],
    existing: Sequence[str],
    wanted: str | None,
    bump: Bump | None,
    now: datetime,
) -> Version:
    if wanted:
        version = parse_version(wanted, settings.scheme)
    else:
        version = next_version(
            settings.scheme,
            known.values(),
            today=now.date(),
            bump=bump or settings.bump,
            initial=settings.initial,
        )
    rules.check_version_free(str(version), existing)
    return version


def _missing_picks(
    uow: UnitOfWork,
    git: GitRepository,
    project: Project,
    sha: str,
    version: Version,
    known: dict[str, Version],
) -> dict[str, list[str]]:
    """Fixes picked into earlier releases that the commit being cut does not contain."""
    by_release: dict[int, tuple[Release, dict[str, str]]] = {}
    for release, pick in uow.releases.picks_of_project(project):
        earlier = known.get(release.version)
        if earlier is None or not earlier < version:
            continue
        by_release.setdefault(release.id, (release, {}))[1][pick.new_sha] = pick.source_sha
    missing: dict[str, list[str]] = {}
    for release, picked in by_release.values():
        tip = git.branch_tip(release.branch)
        if tip is None:
            continue
        absent = git.missing_changes(upstream=sha, head=tip, base=release.base_sha)
        lost = [picked[s] for s in absent if s in picked]
        if lost:
            missing[release.version] = lost
    return missing


def _add_candidate(
    uow: UnitOfWork,
    release: Release,
    *,
    number: int,
    sha: str,
    config_text: str,
    actor: Actor,
    now: datetime,
    picks: Sequence[Pick] = (),
) -> Candidate:
    """Record a candidate; with a build command it is queued to build exactly once."""
    settings = release_settings(config_text)
    status = (
        CandidateStatus.BUILDING if settings.build_command else CandidateStatus.AWAITING_ARTIFACTS
    )
    candidate = uow.releases.add_candidate(
        release=release,
        number=number,
        name=candidate_name(release.version, number),
        sha=sha,
        status=status,
        actor=actor.user,
        now=now,
        config_text=config_text,
        picks=picks,
    )
    if status is CandidateStatus.BUILDING:
        uow.jobs.enqueue(kind=BUILD_JOB, subject_id=candidate.id, now=now)
    return candidate


def _config_at(svc: Services, git: GitRepository, sha: str) -> str:
    text = decode_config(git.read_file(sha, CONFIG_FILE), CONFIG_FILE)
    release_settings(text)  # refuse a commit whose shipyard.yaml is malformed, with file:line:field
    check_servable(svc, text)  # and one naming a router this server cannot run
    return text


def cut_release(
    svc: Services,
    actor: Actor,
    project_name: str,
    *,
    sha: str | None = None,
    version: str | None = None,
    bump: Bump | None = None,
    allow_missing_pick: bool = False,
) -> tuple[Release, Candidate]:
    """Cut ``release/<version>`` from a mainline commit and record candidate rc.1."""
    actor.require(Action.RELEASE, project=project_name)
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        git = svc.git(project.source)
        git.refresh()
        mainline_tip = git.branch_tip(project.mainline)
        if mainline_tip is None:
            raise NotFoundError(f"mainline {project.mainline!r} not found in {project.source}")
        target = git.resolve(sha) if sha else mainline_tip
        rules.check_on_mainline(target, project.mainline, git.is_ancestor(target, mainline_tip))
        config_text = _config_at(svc, git, target)
        settings = release_settings(config_text)
        releases = uow.releases.list_releases(project)
        known = _versions(releases, settings.scheme)
        now = svc.clock.now()
        chosen = _choose_version(settings, known, [r.version for r in releases], version, bump, now)
        missing = _missing_picks(uow, git, project, target, chosen, known)
        rules.check_picks_carried(missing, allow=allow_missing_pick)
        branch = rules.release_branch(str(chosen))
        git.create_branch(branch, target)
        try:
            release = uow.releases.add_release(
                project=project,
                version=str(chosen),
                branch=branch,
                base_sha=target,
                actor=actor.user,
                now=now,
            )
            candidate = _add_candidate(
                uow, release, number=1, sha=target, config_text=config_text, actor=actor, now=now
            )
            uow.events.append(
                actor=actor.user,
                kind="release.cut",
                subject=str(chosen),
                project=project.name,
                now=now,
                payload={
                    "version": str(chosen),
                    "sha": target,
                    "branch": branch,
                    "candidate": candidate.name,
                    "missing_picks_allowed": missing if allow_missing_pick else {},
                },
            )
            uow.commit()
        except BaseException:
            git.delete_branch(branch, target)
            raise
    return release, candidate


def pick(
    svc: Services, actor: Actor, project_name: str, version: str, shas: Sequence[str]
) -> Candidate:
    """Cherry-pick commits onto the release branch and mint the next candidate.

    A conflict or an already-present commit is refused before anything moves.
    """
    actor.require(Action.RELEASE, project=project_name)
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        release = get_release(uow, project, version)
        git = svc.git(project.source)
        git.refresh()
        plan = git.plan_pick(  # resolves the SHAs itself: UNKNOWN_SHA names the culprit
            release.branch, shas, Identity(actor.user, f"{actor.user}@shipyard")
        )
        config_text = _config_at(svc, git, plan.new_tip)
        number = rules.next_candidate_number(uow.releases.candidates(release))
        git.apply_pick(plan)
        try:
            now = svc.clock.now()
            picks = [Pick(p.source_sha, p.new_sha) for p in plan.picked]
            candidate = _add_candidate(
                uow,
                release,
                number=number,
                sha=plan.new_tip,
                config_text=config_text,
                actor=actor,
                now=now,
                picks=picks,
            )
            uow.events.append(
                actor=actor.user,
                kind="release.picked",
                subject=candidate.name,
                project=project.name,
                now=now,
                payload={
                    "version": version,
                    "candidate": candidate.name,
                    "picks": [{"source": p.source_sha, "new": p.new_sha} for p in picks],
                    "sha": plan.new_tip,
                },
            )
            uow.commit()
        except BaseException:
            git.revert_pick(plan)
            raise
    return candidate


def list_releases(
    svc: Services, actor: Actor, project_name: str
) -> tuple[Project, list[tuple[Release, Sequence[Candidate]]]]:
    actor.require(Action.READ)
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        return project, [
            (r, uow.releases.candidates(r)) for r in uow.releases.list_releases(project)
        ]


def _previous(release: Release, releases: Sequence[Release], scheme: Scheme) -> Release | None:
    """The release this one follows: the highest version below it (cut order when schemes differ)."""
    known = _versions(releases, scheme)
    mine = known.get(release.version)
    older = [r for r in releases if r.id != release.id]
    if mine is not None:
        ranked = [(known[r.version], r) for r in older if r.version in known]
        below = [pair for pair in ranked if pair[0] < mine]
        return max(below, key=lambda pair: pair[0])[1] if below else None
    before = [r for r in older if r.id < release.id]
    return max(before, key=lambda r: r.id) if before else None


def show_release(svc: Services, actor: Actor, project_name: str, version: str) -> ReleaseView:
    """A release with its candidates and the changelog since the previous release, picks included."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        release = get_release(uow, project, version)
        candidates = uow.releases.candidates(release)
        releases = uow.releases.list_releases(project)
    git = svc.git(project.source)
    scheme = release_settings(candidates[0].config_text if candidates else "").scheme
    previous = _previous(release, releases, scheme)
    since = previous.base_sha if previous else None
    mainline = git.changelog(release.base_sha, since, limit=CHANGELOG_LIMIT + 1)
    truncated = len(mainline) > CHANGELOG_LIMIT
    tip = candidates[-1].sha if candidates else release.base_sha
    picked = git.changelog(tip, release.base_sha, picked=True) if tip != release.base_sha else []
    changelog = picked + mainline[:CHANGELOG_LIMIT]
    return ReleaseView(
        project, release, candidates, changelog, previous.version if previous else None, truncated
    )
