"""Wires the parts together for a process: database, edge, worker, scheduler."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.db import Database
from bot.groupcommit import GroupCommitter
from bot.metrics import Metrics, queue_reading
from bot.settings import Settings
from bot.slack.client import SlackClients, make_web_client
from bot.slack.edge import Edge
from bot.worker import Worker

log = logging.getLogger(__name__)

# Periodic jobs features add: (stable id, seconds, fn(runtime)). APScheduler runs them with stable ids
# and replace_existing; the truth is in our tables, so a missed run is caught up by the next one.
PERIODIC: list[tuple[str, float, Callable[[Runtime], None]]] = []


def periodic(job_id: str, seconds: float) -> Callable[[Callable[[Runtime], None]], Callable[[Runtime], None]]:
    def register(fn: Callable[[Runtime], None]) -> Callable[[Runtime], None]:
        PERIODIC.append((job_id, seconds, fn))
        return fn

    return register


# Long-running background loops features add (delivery fan-out, digest posting), each in its own
# thread so a 200-second fan-out never holds up the inbox: fn(runtime) -> stop function.
BACKGROUND: list[Callable[[Runtime], Callable[[], None]]] = []


@periodic("prune-jobs", 3600)
def _prune(rt: Runtime) -> None:
    rt.worker.prune()


class Runtime:
    def __init__(self, settings: Settings, *, migrate: bool = True, metrics: Metrics | None = None):
        self.settings = settings
        # This process's metrics (GET /metrics, `scheduler --metrics-port`): its own registry, handed
        # to the parts that count.
        self.metrics = metrics if metrics is not None else Metrics()
        keys = settings.require_encryption_keys() if settings.oauth_enabled else []
        self.db = Database(settings.database_url)
        if migrate:
            self.db.upgrade()
        self.oauth_stores: tuple[Any, Any] | None = None
        if settings.oauth_enabled:
            from bot.slack.oauth import TokenCipher, make_stores

            self.oauth_stores = make_stores(settings.slack_client_id or "", self.db.engine, TokenCipher(keys))
        self.slack = SlackClients(settings, self.oauth_stores[0] if self.oauth_stores else None, self.db,
                                  metrics=self.metrics)
        self.worker = Worker(self.db, self.slack, settings)
        self.writer = GroupCommitter(self.db, on_commit=self.worker.wake, on_batch=self.metrics.observe_batch)
        self.metrics.watch(lambda: queue_reading(self.db, self.worker, self.metrics.db_ttl),
                           lambda: self.worker.running)
        self.worker.edge_busy = self.writer.busy
        self.edge = Edge(settings, self.db, self.writer, multi_workspace=self.oauth_stores is not None)
        self.scheduler: Any = None
        self._stoppers: list[Callable[[], None]] = []
        self._identity: dict[str, Any] | None = None

    def bot_identity(self) -> dict[str, Any]:
        """auth.test once, at start-up (single-workspace token)."""
        if self._identity is None:
            token = self.settings.secret("slack_bot_token")
            if not token:
                self._identity = {}
            else:
                from slack_sdk.errors import SlackApiError

                from bot.settings import ConfigError

                try:
                    resp = make_web_client(self.settings, token, metrics=self.metrics).auth_test()
                except SlackApiError as e:
                    raise ConfigError(f"SLACK_BOT_TOKEN was refused by Slack ({e.response.get('error')})") from None
                except OSError as e:
                    raise ConfigError(f"SLACK_API_URL {self.settings.slack_api_url} is unreachable ({e})") from None
                # enterprise_id: the Grid organisation, whose other workspaces count as inside.
                self._identity = {"team_id": resp.get("team_id"), "user_id": resp.get("user_id"),
                                  "bot_id": resp.get("bot_id"), "enterprise_id": resp.get("enterprise_id")}
        return self._identity

    def build_app(self, *, request_verification: bool = True) -> Any:
        from bot.slack.app import build_app

        identity = None if self.oauth_stores else self.bot_identity()
        return build_app(self.edge, bot_identity=identity, oauth_stores=self.oauth_stores,
                         request_verification=request_verification, metrics=self.metrics)

    def start_background(self, *, worker: bool = True, scheduler: bool = True) -> None:
        # Features register their periodic jobs and worker passes on import.
        import bot.features  # noqa: F401

        if worker:
            self.worker.start()
            self._stoppers = [start(self) for start in BACKGROUND]
        if scheduler:
            from apscheduler.schedulers.background import BackgroundScheduler

            self.scheduler = BackgroundScheduler(timezone="UTC")
            for job_id, seconds, fn in PERIODIC:
                self.scheduler.add_job(fn, "interval", seconds=seconds, args=[self], id=job_id,
                                       replace_existing=True, max_instances=1, coalesce=True,
                                       misfire_grace_time=None)
            self.scheduler.start()

    def run_periodic_now(self) -> None:
        import bot.features  # noqa: F401

        for _, _, fn in PERIODIC:
            fn(self)

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        for stop in self._stoppers:
            stop()
        self.worker.stop()
        self.writer.close()
        self.db.dispose()
