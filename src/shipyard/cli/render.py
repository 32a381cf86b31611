"""Output: Rich for people, --json for scripts. Commands never print any other way."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()

JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def short(sha: str | None) -> str:
    return (sha or "")[:12]


def when(ts: str | None) -> str:
    return (ts or "").replace("T", " ")[:19]


STATUS_STYLE = {
    "built": "green",
    "failed": "red",
    "building": "yellow",
    "awaiting_artifacts": "cyan",
    "vetoed": "red",
}


def status(text: str) -> str:
    return f"[{STATUS_STYLE.get(text, 'white')}]{text}[/]"


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*[str(x) if x is not None else "" for x in r])
    console.print(t)


def line(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)
