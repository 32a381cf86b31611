"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from shipyard import __version__
from shipyard.api import errors
from shipyard.api.bounds import clean_url
from shipyard.api.idempotency import IdempotencyMiddleware, document
from shipyard.api.limits import DEFAULT_MAX_BODY_BYTES, BodyLimit
from shipyard.api.routes import (
    admin,
    audit,
    deployments,
    flag_requests,
    flags,
    freezes,
    projects,
    rollouts,
    secrets,
)
from shipyard.services.context import Services
from shipyard.web import router as dashboard


def create_app(services: Services, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    app = FastAPI(
        title="Shipyard",
        version=__version__,
        description="Cut releases, build once, promote the same artifact, release progressively.",
    )
    app.state.services = services
    errors.install(app)
    app.add_middleware(IdempotencyMiddleware, services=services)  # Idempotency-Key on POSTs
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)  # outermost: before anything reads
    document(app)
    apis = (projects, admin, audit, deployments, flags, rollouts, freezes, flag_requests, secrets)
    for api in apis:
        app.include_router(
            api.router, responses=errors.PROBLEM_RESPONSES, dependencies=[Depends(clean_url)]
        )
    app.include_router(dashboard)  # the web dashboard under /ui (and / redirects there)

    @app.get("/healthz", tags=["admin"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
