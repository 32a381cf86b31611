"""Waiting for a deployment's outcome, so CI can act on it by exit code.

A deployment ends when its target is done or, with a release policy, when its rollout is decided.
``wait`` polls both and ends in one of:

- the deployment succeeded (its rollout promoted): the deployment is returned, exit 0;
- its rollout rolled back (analysis failed, or aborted) or it was canceled: exit 10;
- it failed: exit 9, or 7 when the cause was an integrity failure (a digest mismatch);
- the timeout passed while it ran or waited on a person: exit 11, naming the action awaited.

Without a timeout, ``wait`` stops when the deployment waits on a person (an approval, a paused
rollout) and returns, unless ``through_humans`` (``rollout status --watch`` keeps watching).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.cli.client import Client
from shipyard.cli.errors import CliError

_INTEGRITY = frozenset({"integrity", "digest_mismatch"})
_TERMINAL = frozenset({"succeeded", "failed", "canceled", "rolled_back"})
_ROLLOUT_ACTIVE = frozenset({"progressing", "paused", "promoting", "aborting"})


@dataclass(frozen=True)
class Progress:
    """What one poll saw: the deployment, its rollout if one took over, and who it waits for."""

    deployment: dict[str, Any]
    rollout: dict[str, Any] | None

    @property
    def awaited(self) -> str:
        """The human action it waits on, or "" when it waits on nobody."""
        d, r = self.deployment, self.rollout
        if d["state"] == "awaiting_approval" and d["waiting_for"]:
            return "; ".join(d["waiting_for"])
        if r is not None and r["phase"] == "paused":
            return r["pause_reason"] or "the rollout is paused"
        return ""

    @property
    def done(self) -> bool:
        r = self.rollout
        if r is not None and r["phase"] in _ROLLOUT_ACTIVE:
            return False
        return self.deployment["state"] in _TERMINAL


def rollout_of(client: Client, d: dict[str, Any]) -> dict[str, Any] | None:
    """The rollout of a deployment, if one took over from the target."""
    try:
        r = client.get(f"/api/v1/projects/{d['project']}/deployments/{d['id']}/rollout")
    except CliError as err:
        if err.code == "not_found":
            return None
        raise
    return r if isinstance(r, dict) else None


def poll(client: Client, deployment_id: int, rollout_path: str | None = None) -> Progress:
    """``rollout_path``: the environment's rollout view (live traffic), read instead of the
    deployment's own record while it is still that deployment's."""
    d = client.get(f"/api/v1/deployments/{deployment_id}")
    if rollout_path is not None:
        r = client.get(rollout_path)
        if isinstance(r, dict) and r.get("deployment_id") == deployment_id:
            return Progress(d, r)
    return Progress(d, rollout_of(client, d))


def verdict(p: Progress) -> dict[str, Any]:
    """The deployment of a finished ``Progress``, or the CliError its outcome exits with."""
    d, r = p.deployment, p.rollout
    what = f"deployment {d['id']} of {d['candidate']} to {d['environment']}"
    code = d.get("failure_code") or ""
    if d["state"] == "failed" and code in _INTEGRITY:
        raise CliError(f"{what} failed its integrity check: {d['outcome']}", code)
    rolled_back = r is not None and r["phase"] == "rolled_back"
    if rolled_back or code == "rolled_back":
        why = (r or {}).get("reason") or d["outcome"]
        raise CliError(f"{what} was rolled back: {why}", "rolled_back")
    if d["state"] == "failed":
        raise CliError(f"{what} failed: {d['outcome']}", "deployment_failed")
    if d["state"] == "canceled":
        raise CliError(f"{what} did not go out: {d['outcome']}", "rolled_back")
    return d


def wait(
    client: Client,
    deployment: dict[str, Any],
    *,
    timeout: float | None,
    through_humans: bool = False,
    interval: float = 0.3,
    on_poll: Callable[[Progress], None] | None = None,
    rollout_path: str | None = None,
) -> Progress:
    """Poll until the outcome (see the module docstring); raises the outcome's CliError."""
    deadline = None if timeout is None else time.monotonic() + timeout
    p = poll(client, deployment["id"], rollout_path)
    while True:
        if on_poll is not None:
            on_poll(p)
        if p.done:
            verdict(p)
            return p
        if p.awaited and deadline is None and not through_humans:
            return p
        if deadline is not None and time.monotonic() >= deadline:
            raise _timed_out(p, timeout or 0.0)
        time.sleep(
            interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic()))
        )
        p = poll(client, deployment["id"], rollout_path)


def _timed_out(p: Progress, timeout: float) -> CliError:
    d = p.deployment
    what = f"deployment {d['id']} of {d['candidate']} to {d['environment']}"
    if p.awaited:
        return CliError(f"{what} still waits after {timeout:g}s for: {p.awaited}", "timeout")
    phase = p.rollout["phase"] if p.rollout else d["state"]
    waits = f" (waiting for: {'; '.join(d['waiting_for'])})" if d["waiting_for"] else ""
    return CliError(f"{what} is still {phase} after {timeout:g}s{waits}", "timeout")
