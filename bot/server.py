"""HTTP serving: one Slack request URL, health, OAuth pages. Starlette on uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.runtime import Runtime

log = logging.getLogger(__name__)


def create_asgi_app(rt: Runtime, *, background: bool = True, scheduler: bool = True) -> Starlette:
    bolt = rt.build_app()
    handler = AsyncSlackRequestHandler(bolt)

    async def slack_events(request: Request) -> Response:
        try:
            return await handler.handle(request)
        except Exception:
            # A body Bolt could not even parse: the sender's fault, and the server stays up.
            log.warning("unparseable Slack request", exc_info=True)
            return JSONResponse({"error": "malformed request"}, status_code=400)

    async def healthz(_: Request) -> Response:
        ok = rt.db.ping()
        return JSONResponse({"ok": ok, "database": "ok" if ok else "unreachable",
                             "worker": {"processed": rt.worker.processed}}, status_code=200 if ok else 503)

    async def oauth(request: Request) -> Response:
        return await handler.handle(request)

    routes = [Route("/slack/events", slack_events, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    if rt.oauth_stores is not None:
        routes += [Route("/slack/install", oauth, methods=["GET"]), Route("/slack/oauth_redirect", oauth, methods=["GET"])]

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        if background:
            rt.start_background(worker=True, scheduler=scheduler)
        try:
            yield
        finally:
            rt.stop()

    return Starlette(routes=routes, lifespan=lifespan)


def serve(rt: Runtime, *, host: str, port: int, scheduler: bool = True) -> None:
    import sys

    import uvicorn

    # The event loop hands each request's write to the group-commit thread and waits for it. With
    # CPython's default 5 ms GIL switch interval that hand-off alone costs milliseconds per request
    # under load; 0.5 ms keeps it short (measured in bench/ack.py).
    sys.setswitchinterval(0.0005)

    # --no-scheduler makes a web-only replica: it acks and writes the inbox; a `loopline scheduler`
    # process (polling the same database) does the work.
    app = create_asgi_app(rt, background=scheduler, scheduler=scheduler)
    log.info("serving on http://%s:%s/slack/events", host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on",
                timeout_graceful_shutdown=5)
