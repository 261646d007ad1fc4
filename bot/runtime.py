"""Wires the parts together for a process: database, edge, worker, scheduler."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot import composition
from bot.core.db import Database
from bot.core.groupcommit import GroupCommitter
from bot.core.settings import ConfigError, Settings
from bot.core.slack_client import SlackClients, make_web_client
from bot.features import Exporter, Feature, Periodic, Running
from bot.metrics import Metrics, queue_reading
from bot.queue.core import Worker
from bot.slack.app import build_app
from bot.slack.edge import Edge

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from bot.companion import WorkerProcess

log = logging.getLogger(__name__)


def _prune(rt: Runtime) -> None:
    rt.worker.prune()


# The queue's own upkeep, beside the features' periodic tasks.
CORE_PERIODIC = (Periodic("prune-jobs", 3600, _prune),)


class Runtime:
    def __init__(self, settings: Settings, *, migrate: bool = True, features: Sequence[Feature] | None = None,
                 metrics: Metrics | None = None):
        """`features`: what this process runs; bot/composition.py lists them all (the default).
        `metrics`: this process's metrics (GET /metrics, `scheduler --metrics-port`), with its own registry,
        handed to the parts that count (default: a new one)."""
        self.settings = settings
        self.features = list(features) if features is not None else composition.build_features()
        self.metrics = metrics if metrics is not None else Metrics()
        keys = settings.require_encryption_keys() if settings.oauth_enabled else []
        self.db = Database(settings.database_url)
        if migrate:
            self.db.upgrade()
        self.oauth_stores: tuple[Any, Any] | None = None
        if settings.oauth_enabled:
            # lazy: only multi-workspace installs load OAuth and its cipher
            from bot.slack.oauth import TokenCipher, make_stores

            self.oauth_stores = make_stores(settings.slack_client_id or "", self.db.engine, TokenCipher(keys))
        self.slack = SlackClients(settings, self.oauth_stores[0] if self.oauth_stores else None, self.db,
                                  metrics=self.metrics)
        self.worker = Worker(self.db, self.slack, settings, jobs=composition.worker_jobs(self.features),
                             after_pass=self._nudge_background)
        # The worker runs here (threads) or in a child process (bot/companion.py, `use_worker_process`).
        self.companion: WorkerProcess | None = None
        self.writer = GroupCommitter(self.db, on_commit=self._wake_worker, on_batch=self.metrics.observe_batch,
                                     on_busy=self._edge_busy)
        self.metrics.watch(lambda: queue_reading(self.db, self.worker, self.metrics.db_ttl), self.worker_running)
        self.worker.edge_busy = self.writer.busy
        self.edge = Edge(settings, self.db, self.writer, multi_workspace=self.oauth_stores is not None)
        self.scheduler: BackgroundScheduler | None = None
        self._running: list[Running] = []
        self._identity: dict[str, Any] | None = None

    def use_worker_process(self, companion: WorkerProcess) -> None:
        """The worker and scheduler run in `companion` (started by the caller): commits wake it through
        its pipe, and /metrics adds its counts to this process's."""
        self.companion = companion
        self.metrics.also = companion.metrics_text

    def _wake_worker(self) -> None:
        (self.companion.wake if self.companion is not None else self.worker.wake)()

    def _edge_busy(self) -> None:
        # A worker thread reads writer.busy() itself; a worker process is told down its pipe.
        if self.companion is not None:
            self.companion.edge_busy()

    def worker_running(self) -> bool:
        return self.companion.alive if self.companion is not None else self.worker.running

    def bot_identity(self) -> dict[str, Any]:
        """auth.test once, at start-up (single-workspace token)."""
        if self._identity is None:
            token = self.settings.secret("slack_bot_token")
            if not token:
                self._identity = {}
            else:
                from slack_sdk.errors import SlackApiError

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

    def build_app(self, *, request_verification: bool = True) -> AsyncApp:
        identity = None if self.oauth_stores else self.bot_identity()
        return build_app(self.edge, listeners=composition.listeners(self.features), bot_identity=identity,
                         oauth_stores=self.oauth_stores,
                         request_verification=request_verification, metrics=self.metrics)

    def direct_commands(self) -> dict[str, Any]:
        """The features' slash commands answered without Bolt's dispatch (bot/slack/commands.py)."""
        return composition.direct_commands(self.features, self.edge)

    def start_background(self, *, worker: bool = True, scheduler: bool = True) -> None:
        if worker:
            self.worker.start()
            self._running = [start(self) for start in composition.background(self.features)]
        if scheduler:
            from apscheduler.schedulers.background import BackgroundScheduler

            self.scheduler = BackgroundScheduler(timezone="UTC")
            for p in self.periodic:
                self.scheduler.add_job(p.run, "interval", seconds=p.seconds, args=[self], id=p.job_id,
                                       replace_existing=True, max_instances=1, coalesce=True,
                                       misfire_grace_time=None)
            self.scheduler.start()

    @property
    def periodic(self) -> list[Periodic]:
        return [*CORE_PERIODIC, *composition.periodic(self.features)]

    def exporters(self) -> dict[str, Exporter]:
        return composition.exporters(self.features)

    def run_periodic_now(self) -> None:
        for p in self.periodic:
            p.run(self)

    def _nudge_background(self) -> None:
        """After each worker pass (every edge commit, and once a second): background loops look too, so a
        "send now" announcement goes out within milliseconds of the modal's submit."""
        for running in self._running:
            if running.wake is not None:
                running.wake()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        for running in self._running:
            running.stop()
        self.worker.stop()
        self.writer.close()
        self.db.dispose()
