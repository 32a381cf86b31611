"""What the schema of shipyard.yaml cannot know: whether this server can run what it names.

Checked where a configuration enters (``project add``, cut, pick), so a missing router program
is refused there with its file, line and how to install it, not found at deploy."""

from __future__ import annotations

from shipyard.config.loader import decode_config, line_at
from shipyard.domain.releases import Project
from shipyard.errors import ConfigError
from shipyard.services.context import Services
from shipyard.services.project_config import CONFIG_FILE, project_config


def check_servable(svc: Services, text: str) -> None:
    cfg = project_config(text)
    for i, env in enumerate(cfg.environments):
        if env.router is None:
            continue
        missing = svc.router_binary(env.router.kind)
        if missing is None:
            continue
        err = ConfigError(
            CONFIG_FILE,
            line_at(text, ["environments", i, "router"]),
            f"environments[{i}].router",
            f"the {missing.kind} router needs {missing.binary!r}, "
            "which is not installed on the server",
        )
        err.hint = f"install it on the server: {missing.install}"
        raise err


def newest_config(svc: Services, project: Project) -> str:
    """The newest configuration of a project: its newest candidate's shipyard.yaml, or before
    any cut, the one on its mainline."""
    with svc.uow() as uow:
        for release in uow.releases.list_releases(project):
            candidates = uow.releases.candidates(release)
            if candidates:
                return candidates[-1].config_text
    git = svc.git(project.source)
    tip = git.branch_tip(project.mainline)
    return decode_config(git.read_file(tip, CONFIG_FILE) if tip else None, CONFIG_FILE)


def check_declared(svc: Services, project: Project, environment: str) -> None:
    """Refuse an environment the project's shipyard.yaml does not declare (a typo in a flag
    command would otherwise make flags no application ever reads)."""
    text = newest_config(svc, project)
    names = [env.name for env in project_config(text).environments]
    if environment in names:
        return
    err = ConfigError(
        CONFIG_FILE,
        line_at(text, ["environments"]) if text.strip() else None,
        "environments",
        f"no environment named {environment!r}; declared: {', '.join(names) or 'none'}",
    )
    err.hint = "add it under environments: in shipyard.yaml, or name one that is declared"
    raise err
