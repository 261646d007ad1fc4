"""WebClient factories: every client uses SLACK_API_URL and slack-sdk's own retry handlers."""

from __future__ import annotations

import threading
from typing import Any

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

from bot.settings import Settings


def retry_handlers() -> list[Any]:
    return [
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=3),  # sleeps Retry-After (+ jitter) then retries
        ServerErrorRetryHandler(max_retry_count=2),
    ]


def make_web_client(settings: Settings, token: str | None, *, retries: bool = True, timeout: int = 30) -> WebClient:
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=timeout,
        retry_handlers=retry_handlers() if retries else [],
    )


def make_async_web_client(settings: Settings, token: str | None) -> AsyncWebClient:
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=30,
        retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=2),
                        AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )


class NoInstallation(Exception):
    """No bot token is known for this workspace (uninstalled, or never installed)."""


class SlackClients:
    """Hands the worker a WebClient for a workspace: the single bot token, or the OAuth installation's."""

    def __init__(self, settings: Settings, installation_store: Any | None = None):
        self.settings = settings
        self.installation_store = installation_store
        self._lock = threading.Lock()
        self._cache: dict[tuple[str | None, bool], WebClient] = {}
        self._identities: dict[str | None, dict[str, Any]] = {}

    def token_for(self, team_id: str | None) -> str:
        if self.installation_store is not None:
            bot = self.installation_store.find_bot(enterprise_id=None, team_id=team_id)
            if bot is None or not bot.bot_token:
                raise NoInstallation(f"no installation for team {team_id}")
            return str(bot.bot_token)
        token = self.settings.secret("slack_bot_token")
        if not token:
            raise NoInstallation("SLACK_BOT_TOKEN is not set")
        return token

    def for_team(self, team_id: str | None, *, retries: bool = True) -> WebClient:
        if self.installation_store is not None:
            return make_web_client(self.settings, self.token_for(team_id), retries=retries)
        with self._lock:
            key = (None, retries)
            if key not in self._cache:
                self._cache[key] = make_web_client(self.settings, self.token_for(team_id), retries=retries)
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
