"""Multi-workspace installs: slack-sdk's SQLAlchemy stores, shared by the async edge and the sync worker."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Engine

from bot.db import Database
from bot.slack.client import bot_for_workspace


def make_stores(client_id: str, engine: Engine) -> tuple[SQLAlchemyInstallationStore, SQLAlchemyOAuthStateStore]:
    installs = SQLAlchemyInstallationStore(client_id=client_id, engine=engine)
    states = SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=engine)
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
    and user id, which is all the listeners need. It is found exactly as Bolt finds it: enterprise id,
    workspace and whether the request comes through an org-wide install.
    """

    def __init__(self, store: SQLAlchemyInstallationStore, db: Database | None = None):
        super().__init__()
        self.store = store
        self.db = db

    async def __call__(self, *, context: Any, enterprise_id: str | None, team_id: str | None,
                       user_id: str | None, **_: Any) -> AuthorizeResult | None:
        bot = await asyncio.to_thread(self._find, enterprise_id, team_id, bool(context.is_enterprise_install))
        if bot is None or not bot.bot_token:
            return None
        return AuthorizeResult(enterprise_id=bot.enterprise_id, team_id=bot.team_id, bot_token=bot.bot_token,
                               bot_id=bot.bot_id, bot_user_id=bot.bot_user_id, bot_scopes=bot.bot_scopes)


    def _find(self, enterprise_id: str | None, team_id: str | None, org_wide: bool) -> Bot | None:
        bot = self.store.find_bot(enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=org_wide)
        if bot is None and team_id and not org_wide:
            # A modal opened in a Slack Connect channel and submitted from the other organisation names
            # *their* enterprise beside *our* workspace (view.app_installed_team_id; Bolt's own note in
            # extract_team_id): our workspace's installation is the one to use.
            bot = bot_for_workspace(self.store, self.db, team_id)
        return bot


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
