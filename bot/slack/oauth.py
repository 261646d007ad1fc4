"""Multi-workspace installs: slack-sdk's SQLAlchemy stores, shared by the async edge and the sync worker."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Engine, delete, select

# An install started must be finished within 10 minutes (Bolt's default state lifetime).
STATE_EXPIRATION_S = 600


class ExpiringStateStore(SQLAlchemyOAuthStateStore):
    """slack-sdk's state store deletes a state when it is used, never when it expires, so every install
    page shown and abandoned left a row forever. Issuing a state also deletes the expired ones (at most
    once per `purge_every` seconds, so a burst of installs doesn't scan the table each time)."""

    purge_every = 60.0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._next_purge = 0.0

    def issue(self, *args: Any, **kwargs: Any) -> str:
        state = super().issue(*args, **kwargs)
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + self.purge_every
            self.purge_expired(state)
        return state

    def purge_expired(self, fresh_state: str) -> int:
        """Delete states that expired before `fresh_state` was issued.

        slack-sdk stamps expire_at from the system clock; measuring against the fresh row's own stamp
        (issued now, expiring `expiration_seconds` later) keeps to that clock without reading one.
        """
        c = self.oauth_states.c
        with self.engine.begin() as conn:
            fresh_expiry = conn.scalar(select(c.expire_at).where(c.state == fresh_state))
            if fresh_expiry is None:
                return 0
            issued_at = fresh_expiry - timedelta(seconds=self.expiration_seconds)
            return int(conn.execute(delete(self.oauth_states).where(c.expire_at < issued_at)).rowcount)


def make_stores(client_id: str, engine: Engine) -> tuple[SQLAlchemyInstallationStore, SQLAlchemyOAuthStateStore]:
    installs = SQLAlchemyInstallationStore(client_id=client_id, engine=engine)
    states = ExpiringStateStore(expiration_seconds=STATE_EXPIRATION_S, engine=engine)
    # The stores own their table definitions; create_all is idempotent.
    installs.create_tables()
    states.create_tables()
    return installs, states


class AsyncInstallationStoreAdapter(AsyncInstallationStore):
    """The async edge needs an AsyncInstallationStore; run the sync store's calls in a thread.

    (slack-sdk's AsyncSQLAlchemyInstallationStore would need an async driver for both databases.)
    """

    def __init__(self, store: SQLAlchemyInstallationStore):
        self.store = store

    @property
    def logger(self) -> Any:
        return self.store.logger

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self.store.save, installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self.store.save_bot, bot)

    async def async_find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                             is_enterprise_install: bool | None = False) -> Bot | None:
        return await asyncio.to_thread(self.store.find_bot, enterprise_id=enterprise_id, team_id=team_id,
                                       is_enterprise_install=is_enterprise_install)

    async def async_find_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                      user_id: str | None = None,
                                      is_enterprise_install: bool | None = False) -> Installation | None:
        return await asyncio.to_thread(self.store.find_installation, enterprise_id=enterprise_id, team_id=team_id,
                                       user_id=user_id, is_enterprise_install=is_enterprise_install)

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await asyncio.to_thread(self.store.delete_bot, enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                        user_id: str | None = None) -> None:
        await asyncio.to_thread(self.store.delete_installation, enterprise_id=enterprise_id, team_id=team_id,
                                user_id=user_id)


class StoredBotAuthorize(AsyncAuthorize):
    """Authorises a request from the stored installation alone.

    Bolt's installation-store authorize calls auth.test for every request (its cache is off by
    default) — a Web API call before every ack. The installation already holds the bot's token, id
    and user id, which is all the listeners need.
    """

    def __init__(self, store: SQLAlchemyInstallationStore):
        super().__init__()
        self.store = store

    async def __call__(self, *, context: Any, enterprise_id: str | None, team_id: str | None,
                       user_id: str | None, **_: Any) -> AuthorizeResult | None:
        bot = await asyncio.to_thread(self.store.find_bot, enterprise_id=enterprise_id, team_id=team_id)
        if bot is None or not bot.bot_token:
            return None
        return AuthorizeResult(enterprise_id=bot.enterprise_id, team_id=bot.team_id, bot_token=bot.bot_token,
                               bot_id=bot.bot_id, bot_user_id=bot.bot_user_id, bot_scopes=bot.bot_scopes)


class AsyncStateStoreAdapter(AsyncOAuthStateStore):
    def __init__(self, store: SQLAlchemyOAuthStateStore):
        self.store = store

    @property
    def logger(self) -> Any:
        return self.store.logger

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(self.store.issue, *args, **kwargs)

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.store.consume, state)
