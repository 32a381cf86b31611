"""THE mapping from error codes to exit codes, and the one place errors are printed."""

from __future__ import annotations

from typing import Any

from rich.console import Console

EXIT_NOT_FOUND = 3
EXIT_REFUSED = 4
EXIT_INVALID = 5
EXIT_AUTH = 6
EXIT_INTEGRITY = 7
EXIT_UNAVAILABLE = 8
EXIT_FAILED = 9  # the thing ran and failed (a build, a deployment)
EXIT_ROLLED_BACK = 10  # a rollout ended on the stable version (failed analysis, abort), or canceled
EXIT_TIMEOUT = 11  # --timeout passed while it still ran or waited on a person
EXIT_IN_USE = 12  # serve: the data dir is held by another server, or the port is taken

_BY_CODE: dict[str, int] = {
    "not_found": EXIT_NOT_FOUND,
    "unknown_sha": EXIT_NOT_FOUND,
    "conflict": EXIT_REFUSED,
    "version_exists": EXIT_REFUSED,
    "pick_conflict": EXIT_REFUSED,
    "already_picked": EXIT_REFUSED,
    "missing_pick": EXIT_REFUSED,
    "not_on_mainline": EXIT_REFUSED,
    "refused": EXIT_REFUSED,
    "gate_closed": EXIT_REFUSED,
    "frozen": EXIT_REFUSED,
    "vetoed": EXIT_REFUSED,
    "invalid_transition": EXIT_REFUSED,
    "lease_lost": EXIT_REFUSED,
    "invalid": EXIT_INVALID,
    "config_invalid": EXIT_INVALID,
    "too_large": EXIT_INVALID,  # the API's problem codes that are not a ShipyardError
    "method_not_allowed": EXIT_INVALID,
    "internal": EXIT_UNAVAILABLE,
    "unauthenticated": EXIT_AUTH,
    "permission_denied": EXIT_AUTH,
    "separation_of_duties": EXIT_AUTH,
    "integrity": EXIT_INTEGRITY,
    "digest_mismatch": EXIT_INTEGRITY,
    "build_failed": EXIT_FAILED,
    "deployment_failed": EXIT_FAILED,
    "rolled_back": EXIT_ROLLED_BACK,
    "timeout": EXIT_TIMEOUT,
    "adapter_failed": EXIT_UNAVAILABLE,
    "unavailable": EXIT_UNAVAILABLE,
    "in_use": EXIT_IN_USE,
}


class CliError(Exception):
    """An error to show the user as one line (plus an optional hint), then exit."""

    def __init__(self, message: str, code: str, hint: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint
        self.details = details

    @property
    def exit_code(self) -> int:
        return _BY_CODE.get(self.code, 1)


def show(err: CliError, *, as_json: bool) -> int:
    console = Console(stderr=True)
    if as_json:
        import json

        console.print_json(
            json.dumps({"error": err.message, "code": err.code, "hint": err.hint, **err.details})
        )
    else:
        console.print(f"[bold red]error:[/] {err.message}", highlight=False, soft_wrap=True)
        if err.hint:
            console.print(f"[dim]hint: {err.hint}[/]", highlight=False, soft_wrap=True)
    return err.exit_code
