"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from shipyard import __version__
from shipyard.api import errors
from shipyard.api.idempotency import IdempotencyMiddleware, document
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


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Shipyard",
        version=__version__,
        description="Cut releases, build once, promote the same artifact, release progressively.",
    )
    app.state.services = services
    errors.install(app)
    app.add_middleware(IdempotencyMiddleware, services=services)  # Idempotency-Key on POSTs
    document(app)
    app.include_router(projects.router)
    app.include_router(admin.router)
    app.include_router(audit.router)
    app.include_router(deployments.router)
    app.include_router(flags.router)
    app.include_router(rollouts.router)
    app.include_router(freezes.router)
    app.include_router(flag_requests.router)
    app.include_router(secrets.router)
    app.include_router(dashboard)  # the web dashboard under /ui (and / redirects there)

    @app.get("/healthz", tags=["admin"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
