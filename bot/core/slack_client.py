"""WebClient factories: every client uses SLACK_API_URL and slack-sdk's own retry handlers."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.core import workspaces as ws_svc
from bot.core.db import Database
from bot.core.settings import Settings

if TYPE_CHECKING:
    from bot.metrics import Metrics


def retry_handlers() -> list[Any]:
    return [
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=3),  # sleeps Retry-After (+ jitter) then retries
        ServerErrorRetryHandler(max_retry_count=2),
    ]


def make_web_client(settings: Settings, token: str | None, *, retries: bool = True, timeout: int = 30,
                    metrics: Metrics | None = None) -> WebClient:
    """`metrics`: count this client's calls, 429s and retries (bot/metrics.py: through its retry handlers,
    which slack-sdk shows every answer)."""
    handlers = retry_handlers() if retries else []
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=timeout,
        retry_handlers=metrics.slack_handlers(handlers) if metrics is not None else handlers,
    )


def make_async_web_client(settings: Settings, token: str | None, *, metrics: Metrics | None = None) -> AsyncWebClient:
    handlers: list[Any] = [AsyncConnectionErrorRetryHandler(max_retry_count=2),
                           AsyncRateLimitErrorRetryHandler(max_retry_count=2)]
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=30,
        retry_handlers=metrics.slack_handlers(handlers, asynchronous=True) if metrics is not None else handlers,
    )


class NoInstallation(Exception):
    """No bot token is known for this workspace (uninstalled, or never installed)."""


def bot_for_workspace(store: Any, db: Database | None, team_id: str) -> Any | None:
    """The stored bot serving a workspace, found as Bolt finds it for a request: with the enterprise id
    and org-wide flag of the installation that authorises the workspace's requests (recorded by the edge,
    bot.core.workspaces). A workspace no request has come from yet (scheduled work right after an
    upgrade) is found by its own installation, whatever its enterprise: team ids are unique across Slack."""
    key = None
    if db is not None:

        with db.read_session() as s:
            key = ws_svc.installation_of(s, team_id=team_id)
    if key is not None:
        return store.find_bot(enterprise_id=key[0], team_id=team_id, is_enterprise_install=key[1])
    return _workspace_install(store, team_id)


def _workspace_install(store: Any, team_id: str) -> Any | None:
    """slack-sdk's find_bot query without the enterprise condition (its tables, its row-to-Bot builder)."""
    from sqlalchemy import desc, select

    bots = getattr(store, "bots", None)
    if bots is None:  # another kind of installation store: it can only be asked the standard way
        return store.find_bot(enterprise_id=None, team_id=team_id)
    q = (select(bots).where(bots.c.client_id == store.client_id, bots.c.team_id == team_id,
                            bots.c.bot_token.is_not(None)).order_by(desc(bots.c.installed_at)).limit(1))
    with store.engine.connect() as conn:
        row = conn.execute(q).mappings().first()
    return store.build_bot_entity(row) if row else None


class SlackClients:
    """Hands the worker a WebClient for a workspace: the single bot token, or the OAuth installation's."""

    def __init__(self, settings: Settings, installation_store: Any | None = None, db: Database | None = None,
                 *, metrics: Metrics | None = None):
        self.settings = settings
        self.metrics = metrics
        self.installation_store = installation_store
        self.db = db
        self._lock = threading.Lock()
        self._cache: dict[tuple[str | None, bool], WebClient] = {}
        self._identities: dict[str | None, dict[str, Any]] = {}

    def token_for(self, team_id: str | None) -> str:
        if self.installation_store is not None:
            bot = bot_for_workspace(self.installation_store, self.db, team_id) if team_id else None
            if bot is None or not bot.bot_token:
                raise NoInstallation(f"no installation for team {team_id}")
            return str(bot.bot_token)
        token = self.settings.secret("slack_bot_token")
        if not token:
            raise NoInstallation("SLACK_BOT_TOKEN is not set")
        return token

    def for_team(self, team_id: str | None, *, retries: bool = True) -> WebClient:
        if self.installation_store is not None:
            return make_web_client(self.settings, self.token_for(team_id), retries=retries, metrics=self.metrics)
        with self._lock:
            key = (None, retries)
            if key not in self._cache:
                self._cache[key] = make_web_client(self.settings, self.token_for(team_id), retries=retries,
                                                   metrics=self.metrics)
            return self._cache[key]

    def identity(self, team_id: str | None) -> dict[str, Any]:
        """auth.test's answer for the workspace's token (its team_id and, on Enterprise Grid, enterprise_id),
        asked once per process: a token never changes organisation."""
        with self._lock:
            known = self._identities.get(team_id)
        if known is None:
            resp = self.for_team(team_id).auth_test()
            known = {"team_id": resp.get("team_id") or team_id, "enterprise_id": resp.get("enterprise_id") or None}
            with self._lock:
                self._identities[team_id] = known
        return known
