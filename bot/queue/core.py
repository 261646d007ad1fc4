"""Claims due jobs from the durable queue and runs their handlers.

Claiming takes a lease (`locked_until`) in a short transaction; PostgreSQL skips rows another replica
holds (`FOR UPDATE SKIP LOCKED`), SQLite serialises writers anyway. A process that dies mid-job leaves
the lease to expire and the job is run again, so handlers are idempotent: they check the natural keys
in the database before doing anything visible.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.db import Database, is_unavailable
from bot.core.logging import bind
from bot.core.models import Job
from bot.core.settings import Settings
from bot.core.slack_client import NoInstallation, SlackClients
from bot.queue import lease

log = logging.getLogger(__name__)

class TransientError(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Deferred(TransientError):
    """Not a failure: the job chose to run later (e.g. low-priority work while the edge is busy)."""


class PermanentError(Exception):
    pass


class Abandoned(PermanentError):
    """The workspace no longer has Loopline (uninstalled, token revoked, account or workspace gone): no
    later attempt can reach Slack for it. Recorded with the reason, never retried, never silent."""


# Slack's answers for a token that is dead for good (the workspace removed the app, or the workspace,
# org access or bot user is gone), as opposed to a call that was merely wrong.
DEAD_TOKEN_ERRORS = frozenset({"token_revoked", "invalid_auth", "account_inactive", "not_authed",
                               "team_access_not_granted", "team_not_found", "no_permission_for_team"})


def slack_error(e: SlackApiError) -> str:
    try:
        return str(e.response.get("error") or "unknown_error")
    except Exception:
        return "unknown_error"


def classify(e: BaseException) -> BaseException:
    """Map a Web API failure to Transient (retry later) or Permanent (record and report)."""
    if isinstance(e, SlackApiError):
        code = slack_error(e)
        status = getattr(e.response, "status_code", 200)
        if status == 429 or code in ("ratelimited", "rate_limited"):
            retry_after = None
            with contextlib.suppress(TypeError, ValueError):
                retry_after = float(e.response.headers.get("Retry-After") or e.response.headers.get("retry-after"))
            return TransientError(code, retry_after)
        if status >= 500 or code in ("internal_error", "fatal_error", "service_unavailable", "request_timeout"):
            return TransientError(code)
        if code in DEAD_TOKEN_ERRORS:
            return Abandoned(code)
        return PermanentError(code)
    if isinstance(e, SlackRequestError | OSError | TimeoutError):
        return TransientError(type(e).__name__)
    if is_unavailable(e):  # the work is still owed: retry when the database is back
        return TransientError("database: " + (str(e).strip().splitlines() or ["error"])[0][:200])
    if isinstance(e, NoInstallation):
        return Abandoned(str(e))
    return e


@dataclass
class JobContext:
    db: Database
    slack: SlackClients
    settings: Settings
    worker: Worker
    job_id: int
    key: str
    team_id: str | None
    attempts: int
    created_at: datetime | None = None

    def client(self, *, retries: bool = True) -> WebClient:
        return self.slack.for_team(self.team_id, retries=retries)


Handler = Callable[[JobContext, dict[str, Any]], None]
# Called in the transaction that marks a job failed for good: (session, ctx, payload, error).
FailureHandler = Callable[[Session, JobContext, dict[str, Any], str], None]
# An inbox event for the features that care about it: fn(ctx, event, envelope).
EventFn = Callable[[JobContext, dict[str, Any], dict[str, Any]], None]


@dataclass
class Jobs:
    """A feature's job handlers and event routes. The decorators only record into this object; the
    composition root (bot/composition.py) collects every feature's `Jobs` and gives them to the Worker."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    on_failure: dict[str, FailureHandler] = field(default_factory=dict)
    # (event type, message subtype or None for a plain message, fn); several features may route one type.
    routes: list[tuple[str, str | None, EventFn]] = field(default_factory=list)

    def handler(self, kind: str, *, on_failure: FailureHandler | None = None) -> Callable[[Handler], Handler]:
        """The handler of a job kind; `on_failure` tells someone when the job gives up for good."""
        def record(fn: Handler) -> Handler:
            self.add(kind, fn, on_failure=on_failure)
            return fn

        return record

    def add(self, kind: str, fn: Handler, *, on_failure: FailureHandler | None = None) -> None:
        if kind in self.handlers and self.handlers[kind] is not fn:
            raise ValueError(f"two handlers for job kind {kind!r}")
        self.handlers[kind] = fn
        if on_failure is not None:
            self.on_failure[kind] = on_failure

    def on_event(self, etype: str, subtype: str | None = None) -> Callable[[EventFn], EventFn]:
        """Route fn(ctx, event, envelope) for an event type (and message subtype; None = plain)."""
        def record(fn: EventFn) -> EventFn:
            self.routes.append((etype, subtype, fn))
            return fn

        return record

    def merge(self, other: Jobs) -> None:
        for kind, fn in other.handlers.items():
            self.add(kind, fn, on_failure=other.on_failure.get(kind))
        self.routes.extend(other.routes)


def backoff(attempt: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter (AWS architecture blog): spreads retries of a burst."""
    return random.uniform(0.5, 1.0) * min(cap, base * 2 ** max(0, attempt - 1))


@dataclass(frozen=True)
class RetryPolicy:
    """The one retry policy for work that calls Slack (jobs, announcement deliveries, digest runs).

    Transient failures (5xx, 429, dropped connections, a database that refused a write) are retried
    with capped exponential backoff for at least `horizon` after the work was created: Slack outages
    last hours, and a fixed number of attempts (8 used to mean four minutes) drops acked work.
    """

    base: float = 1.0
    cap: float = 900.0
    horizon: timedelta = timedelta(hours=24)

    def delay(self, e: TransientError, *, attempt: int, since: datetime | None) -> float | None:
        """Seconds until the next attempt, or None: retried long enough, give up."""
        if since is not None and clock.now() - since >= self.horizon:
            return None
        if e.retry_after is not None:
            return e.retry_after  # Slack said when
        return backoff(attempt, base=self.base, cap=self.cap)


RETRY = RetryPolicy()


class Worker:

    def __init__(self, db: Database, slack: SlackClients, settings: Settings, *, jobs: Jobs | None = None,
                 after_pass: Callable[[], None] | None = None, name: str | None = None, batch: int = 20):
        """`jobs`: every job kind's handler (bot/composition.py builds them); `after_pass` runs after each
        pass of the loop (the runtime nudges its background loops with it)."""
        self.jobs = jobs if jobs is not None else Jobs()
        self.after_pass = after_pass
        self.db = db
        self.slack = slack
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self) % 10000}"
        self.batch = batch
        # How long a claimed job stays invisible to other workers; a process killed mid-job leaves its
        # jobs to be picked up after this. Longer than any one job's retries (Retry-After sleeps).
        self.lease = timedelta(seconds=settings.loopline_job_lease_seconds)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.processed = 0
        self.edge_busy: Callable[[], bool] | None = None
        self._backlog: tuple[float, dict[str, Any]] | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="loopline-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=timeout)

    def run_forever(self, idle: float = 1.0) -> None:
        log.info("worker started", extra={"worker": self.name})
        while not self._stop.is_set():
            try:
                n = self.run_once()
                if self.after_pass is not None:
                    self.after_pass()
            except Exception:
                log.exception("worker pass failed")
                n = 0
            if n == 0:
                self._wake.wait(timeout=idle)
                self._wake.clear()

    # --- one pass ---------------------------------------------------------------------------------

    def claim(self, limit: int | None = None) -> list[Job]:
        now = clock.now()
        pending = (Job.status == "pending",)
        q = (select(Job).where(*pending, Job.run_after <= now, lease.free(Job, now))
             .order_by(Job.id).limit(limit or self.batch))
        if lease.none_due(self.db, q):
            return []
        with self.db.session() as s:
            seen = list(s.scalars(lease.due(s, q)))
            s.expunge_all()  # the objects keep what was read; attempts is counted below
            taken = lease.take(s, Job, [j.id for j in seen], now=now, until=now + self.lease, where=pending,
                               locked_by=self.name, attempts=Job.attempts + 1)
        jobs = [j for j in seen if j.id in taken]
        for j in jobs:
            j.attempts += 1
        return jobs

    def run_once(self, limit: int | None = None) -> int:
        jobs = self.claim(limit)
        for job in jobs:
            if self.edge_busy is not None and self.edge_busy():
                # Acks first: under a burst, pause briefly between jobs (at least ~40 jobs/s go on).
                time.sleep(0.025)
            self._run_job(job)
        self.processed += len(jobs)
        return len(jobs)

    def drain(self, max_passes: int = 100) -> int:
        """Run until nothing is due (tests, CLI)."""
        total = 0
        for _ in range(max_passes):
            n = self.run_once()
            if self.after_pass is not None:
                self.after_pass()
            total += n
            if n == 0:
                break
        return total

    def _run_job(self, job: Job) -> None:
        fn = self.jobs.handlers.get(job.kind)
        ctx = JobContext(self.db, self.slack, self.settings, self, job.id, job.key, job.team_id, job.attempts,
                         job.created_at)
        with bind(team=job.team_id, job=job.key):
            if fn is None:
                self._finish(job, "failed", f"no handler for {job.kind}")
                return
            try:
                fn(ctx, job.payload)
            except Exception as raw:
                e = classify(raw)
                if isinstance(e, TransientError):
                    delay = RETRY.delay(e, attempt=job.attempts, since=job.created_at)
                    if delay is not None:
                        (log.debug if isinstance(e, Deferred) else log.warning)(
                            "job %s: transient %s, retry in %.1fs", job.key, e, delay)
                        self._retry(job, delay, str(e))
                        return
                if isinstance(e, Abandoned):
                    reason = f"{e}: workspace {job.team_id} removed Loopline or its token was revoked"
                    log.warning("job %s abandoned: %s", job.key, reason)
                    self._finish(job, "abandoned", reason[:500])
                    return
                if isinstance(e, PermanentError | TransientError):
                    log.warning("job %s failed: %s", job.key, e)
                else:
                    log.exception("job %s crashed", job.key)
                self._finish(job, "failed", str(e)[:500] or type(e).__name__, ctx)
                return
            self._finish(job, "done", None)

    def _finish(self, job: Job, status: str, error: str | None, ctx: JobContext | None = None) -> None:
        with self.db.session() as s:
            s.execute(update(Job).where(Job.id == job.id).values(
                status=status, error=error, locked_until=None, done_at=clock.now()))
            tell = self.jobs.on_failure.get(job.kind) if status == "failed" and ctx is not None else None
            if tell is not None and ctx is not None:
                try:
                    with s.begin_nested():  # a failing notice must not keep the job from being closed
                        tell(s, ctx, job.payload, error or "")
                except Exception:
                    log.exception("job %s: failure handler failed", job.key)

    def _retry(self, job: Job, delay: float, error: str) -> None:
        with self.db.session() as s:
            s.execute(update(Job).where(Job.id == job.id).values(
                run_after=clock.now() + timedelta(seconds=delay), locked_until=None, error=error))

    def backlog(self, max_age: float = 5.0) -> dict[str, Any]:
        """The queue at a glance for /healthz: pending jobs, how many are due, how many wait to retry
        after an error, and how long the oldest due one has waited. One aggregate over the pending rows
        (index ix_jobs_due), cached for `max_age` seconds so that frequent polling costs nothing."""
        mono = time.monotonic()
        if self._backlog is not None and mono - self._backlog[0] < max_age:
            return self._backlog[1]
        now = clock.now()
        with self.db.read_session() as s:
            pending, due, retrying, oldest = s.execute(
                select(func.count(), func.count(case((Job.run_after <= now, 1))),
                       func.count(Job.error), func.min(Job.run_after))
                .where(Job.status == "pending")).one()
        out = {"pending": pending, "due": due, "retrying": retrying,
               "oldest_due_s": round((now - oldest).total_seconds(), 1) if due and oldest else 0.0}
        self._backlog = (mono, out)
        return out

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def prune(self, older_than: timedelta = timedelta(days=7)) -> int:
        """Done jobs are only dedup keys after a while; Slack never retries after hours."""
        from sqlalchemy import delete

        with self.db.session() as s:
            r = s.execute(delete(Job).where(Job.status == "done", Job.done_at < clock.now() - older_than))
            return int(r.rowcount or 0)  # type: ignore[attr-defined]
