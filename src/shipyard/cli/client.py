"""The CLI is a client of the API, like kubectl: this is the only place it speaks HTTP."""

from __future__ import annotations

import os
from typing import Any

import httpx

from shipyard.cli.errors import CliError

DEFAULT_URL = "http://127.0.0.1:8420"


class Client:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 60.0):
        self.url = (url or os.environ.get("SHIPYARD_URL") or DEFAULT_URL).rstrip("/")
        token = token if token is not None else os.environ.get("SHIPYARD_TOKEN", "")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach Shipyard at {self.url} ({exc.__class__.__name__})",
                "unavailable",
                hint="start it with `shipyard serve`, or set SHIPYARD_URL",
            ) from exc
        if resp.status_code >= 400:
            raise _problem(resp)
        if resp.status_code == 204 or not resp.content:
            return None
        if resp.headers.get("content-type", "").startswith("application/json"):
            return resp.json()
        return resp.text

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def _problem(resp: httpx.Response) -> CliError:
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict) or "code" not in body:
        return CliError(f"server answered {resp.status_code}: {resp.text[:200]}", "unavailable")
    details = body.get("details") or {}
    return CliError(str(body.get("detail")), str(body["code"]), body.get("hint"), **details)
