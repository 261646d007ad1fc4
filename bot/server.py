"""HTTP serving: one Slack request URL, health, OAuth pages. Starlette on uvicorn."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.adapter.starlette.async_handler import (
    AsyncSlackRequestHandler,
    to_async_bolt_request,
    to_starlette_response,
)
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.companion import WorkerProcess
from bot.core.db import is_postgres
from bot.core.httplimits import INSTALL_BURST, INSTALL_PER_SECOND, BodyLimits, RateLimiter, uvicorn_limits
from bot.metrics import RequestMeter, authorised, request_kind
from bot.runtime import Runtime
from bot.slack.app import fixed_authorization
from bot.slack.commands import DirectCommands
from bot.slack.events import LeanInbox

log = logging.getLogger(__name__)


def signed_by_slack(verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]) -> bool:
    """slack-sdk's check of X-Slack-Signature over the raw bytes, with its 5-minute window; a missing,
    non-numeric or absurd timestamp, or a body that isn't UTF-8, is simply not signed."""
    try:
        return verifier.is_valid(body, headers.get("x-slack-request-timestamp", ""),
                                 headers.get("x-slack-signature", ""))
    except ValueError:  # int() of the timestamp, or UnicodeDecodeError of the body
        return False


def create_asgi_app(rt: Runtime, *, background: bool = True, scheduler: bool = True,
                    companion: WorkerProcess | None = None) -> Starlette:
    """`background`: run the worker (and with `scheduler` the periodic tasks) in threads of this process;
    `companion`: run them in that child process instead (bot/companion.py)."""
    # Our own check runs before Bolt sees the request, so Bolt's (the same slack-sdk verifier over the
    # same bytes) is switched off: it would parse the body first and log it whole at INFO when the
    # signature is bad.
    bolt = rt.build_app(request_verification=False)
    handler = AsyncSlackRequestHandler(bolt)
    verifier = SignatureVerifier(rt.settings.secret("slack_signing_secret") or "")
    installs = RateLimiter(burst=INSTALL_BURST, per_second=INSTALL_PER_SECOND)

    metrics = rt.metrics
    metrics_token = rt.settings.secret("loopline_metrics_token")

    # Events, and /feedback TEXT, of a single-workspace install skip Bolt's dispatch (bot/slack/events.py
    # LeanInbox, bot/slack/commands.py DirectCommands).
    lean, direct = None, None
    if rt.oauth_stores is None:
        auth = fixed_authorization(rt.settings.secret("slack_bot_token") or "", rt.bot_identity())
        lean, direct = LeanInbox(rt.edge, auth), DirectCommands(auth, rt.direct_commands())

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        if not signed_by_slack(verifier, body, request.headers):
            return JSONResponse({"error": "invalid request"}, status_code=401)
        if lean is not None and (envelope := lean.take(body, request.headers.get("content-type", ""))) is not None:
            request.state.slack_kind = "event"
            try:
                await lean.handle(envelope)
            except Exception:
                # Not acked: Slack retries it (as Bolt answers a failing listener).
                log.exception("event not stored (event_id %s)", envelope.get("event_id"))
                return JSONResponse({"error": "not stored; retry"}, status_code=500)
            return Response(status_code=200)
        if direct is not None and (command := direct.take(body, request.headers.get("content-type", ""))) is not None:
            request.state.slack_kind = "command"
            if (answered := await direct.handle(command)) is not None:
                return to_starlette_response(answered)
        try:
            # AsyncSlackRequestHandler.handle's POST branch, keeping the request Bolt parsed: its kind
            # labels the ack's latency in /metrics (RequestMeter reads it from the request's state).
            bolt_req = to_async_bolt_request(request, body)
            request.state.slack_kind = request_kind(bolt_req.body)
            return to_starlette_response(await bolt.async_dispatch(bolt_req))
        except Exception:
            # A body Bolt could not even parse: the sender's fault, and the server stays up.
            log.warning("unparseable Slack request", exc_info=True)
            return JSONResponse({"error": "malformed request"}, status_code=400)

    async def healthz(_: Request) -> Response:
        # Orchestrators poll this: a SELECT 1 and a cached backlog query, both off the event loop, and
        # the writer's own view of its last commits (no write here; the writer probes on its own).
        return JSONResponse(*await asyncio.to_thread(health, rt))

    async def metrics_page(request: Request) -> Response:
        # No Slack signature here (Prometheus scrapes it); nothing secret or personal in it
        # (bot/metrics.py). LOOPLINE_METRICS_TOKEN, when set, is required as a bearer token.
        if not authorised(metrics_token, request.headers.get("authorization")):
            return PlainTextResponse("unauthorised\n", status_code=401, headers={"www-authenticate": "Bearer"})
        return Response(await metrics.render_async(), media_type=metrics.content_type)

    async def oauth(request: Request) -> Response:
        if request.url.path == "/slack/install":
            # Each hit stores an OAuth state; a person installing needs one or two.
            wait = installs.take(request.client.host if request.client else "")
            if wait:
                return PlainTextResponse("Too many install attempts from this address; try again in a minute.",
                                         status_code=429, headers={"retry-after": str(math.ceil(wait))})
        return await handler.handle(request)

    routes = [Route("/slack/events", slack_events, methods=["POST"]), Route("/healthz", healthz, methods=["GET"]),
              Route("/metrics", metrics_page, methods=["GET"])]
    if rt.oauth_stores is not None:
        routes += [Route("/slack/install", oauth, methods=["GET"]), Route("/slack/oauth_redirect", oauth, methods=["GET"])]

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        if companion is not None:
            rt.use_worker_process(companion)
            companion.start()
        elif background:
            rt.start_background(worker=True, scheduler=scheduler)
        try:
            yield
        finally:
            if companion is not None:
                companion.stop()
            rt.stop()

    return Starlette(routes=routes, lifespan=lifespan,
                     middleware=[Middleware(RequestMeter, metrics=metrics), Middleware(BodyLimits)])


def health(rt: Runtime) -> tuple[dict[str, Any], int]:
    """/healthz: 503 with a reason when the database is unreachable or refuses writes, the writer is
    stopped or stuck, or the worker thread died; always with the backlog of jobs."""
    reasons: list[str] = []
    reachable = rt.db.ping()
    if not reachable:
        reasons.append("the database is unreachable")
    writer = rt.writer.health()
    if not writer.ok and writer.reason:
        reasons.append(writer.reason)
    worker = rt.worker
    companion = rt.companion
    if companion is not None and not companion.alive:
        reasons.append("the worker process has stopped (it is being restarted)")
    elif worker.started and not worker.running:
        reasons.append("the worker thread has stopped")
    jobs: dict[str, Any] | None = None
    if reachable:
        try:
            jobs = worker.backlog()
        except Exception as e:  # the backlog is information; the checks above decide the status
            log.warning("backlog query failed: %s", e)
    body = {
        "ok": not reasons,
        "reason": "; ".join(reasons) or None,
        "database": "ok" if reachable else "unreachable",
        "writer": {"ok": writer.ok, "last_commit_s": _round(writer.last_commit_s), "queued": writer.queued,
                   "busy_s": _round(writer.busy_s)},
        "worker": ({"process": companion.pid, "running": companion.alive, "restarts": companion.restarts}
                   if companion is not None else {"processed": worker.processed, "running": worker.running}),
        "jobs": jobs,
    }
    return body, 503 if reasons else 200


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def serve(rt: Runtime, *, host: str, port: int, worker: str = "auto") -> None:
    """`worker`: where the worker and scheduler run. "process": a child process at lower CPU priority
    (bot/companion.py); "thread": threads of this process; "auto" (default): a process on PostgreSQL, threads
    on SQLite (whose single write lock two processes would take turns at: README "Measured on this machine",
    *Acks*); "none" (--no-scheduler): a web-only replica that acks and writes the inbox while a `loopline scheduler`
    (polling the same database) does the work."""
    import uvicorn

    if worker == "auto":
        worker = "process" if is_postgres(rt.db.engine) else "thread"
    companion = WorkerProcess(metrics_token=rt.settings.secret("loopline_metrics_token")) if worker == "process" else None
    app = create_asgi_app(rt, background=worker == "thread", scheduler=worker == "thread", companion=companion)
    import gc

    # Everything built at start-up (Bolt, SQLAlchemy metadata, sklearn…) is long-lived: keep it out of
    # the collector's way, and collect the young generation less often. Full collections over the
    # start-up heap were the 80 ms p99 ack spikes in bench/ack.py.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)
    limits = uvicorn_limits()
    log.info("serving on http://%s:%s/slack/events (at most %d connections)", host, port,
             limits["http"].max_connections)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on",
                timeout_graceful_shutdown=5, **limits)
