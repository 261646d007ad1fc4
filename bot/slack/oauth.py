"""Multi-workspace installs: slack-sdk's SQLAlchemy stores, shared by the async edge and the sync worker.

Tokens are encrypted at rest: the installation store's token columns encrypt on the way into the
database and decrypt on the way out, so the edge (StoredBotAuthorize, Bolt's OAuth flow through
AsyncInstallationStoreAdapter) and the worker (SlackClients) see plain tokens and the database never does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Connection, Engine, Text, delete, inspect, select, type_coerce
from sqlalchemy.types import TypeDecorator

from bot.core.db import Database
from bot.core.settings import ConfigError
from bot.core.slack_client import bot_for_workspace

# Every column of slack-sdk's tables that holds a credential (an incoming webhook URL lets anyone post).
TOKEN_COLUMNS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token", "incoming_webhook_url")
KEYS_HINT = "LOOPLINE_ENCRYPTION_KEY lists keys comma-separated; the first encrypts, every one decrypts"


class UndecryptableToken(Exception):
    """A stored token that no configured key decrypts."""


class TokenCipher:
    """Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) over the keys of LOOPLINE_ENCRYPTION_KEY."""

    def __init__(self, keys: Sequence[str]):
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, value: str) -> str:
        try:
            return self._fernet.decrypt(value.encode()).decode()
        except InvalidToken:
            raise UndecryptableToken(f"a stored Slack token can't be decrypted with any key; {KEYS_HINT}") from None

    @staticmethod
    def is_plain(value: str) -> bool:
        """Written before tokens were encrypted: a Slack token or webhook URL as such."""
        return value.startswith(("xox", "https://"))


def new_key() -> str:
    return Fernet.generate_key().decode()


class EncryptedToken(TypeDecorator[str]):
    """A token column: ciphertext in the database, plain text in Python.

    TEXT, not slack-sdk's VARCHAR(200): ciphertext is about 2.5 times longer than the token
    (migrations/versions/0002_token_encryption.py widens existing PostgreSQL tables).
    """

    impl = Text
    cache_ok = True

    def __init__(self, cipher: TokenCipher):
        super().__init__()
        self.cipher = cipher

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else self.cipher.encrypt(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        # Tolerated for a rolling upgrade; start-up encrypts whatever is still plain (see prepare()).
        return None if value is None or TokenCipher.is_plain(value) else self.cipher.decrypt(value)


@dataclass
class TokenScan:
    tokens: int = 0  # non-empty token values
    plain: int = 0  # of which stored in plain text
    undecryptable: list[str] = field(default_factory=list)  # workspaces (or orgs) of tokens no key opens


class EncryptedInstallationStore(SQLAlchemyInstallationStore):
    """slack-sdk's store with every token column encrypted; its queries and rules are unchanged."""

    def __init__(self, client_id: str, engine: Engine, cipher: TokenCipher):
        super().__init__(client_id=client_id, engine=engine)
        self.cipher = cipher
        for table in (self.bots, self.installations):
            for name in TOKEN_COLUMNS:
                if name in table.c:
                    # Set before any statement is compiled: inserts, updates and selects all go
                    # through the column's type.
                    table.c[name].type = EncryptedToken(cipher)

    def _token_rows(self, conn: Connection) -> list[tuple[Any, int, str, str, str | None]]:
        """(table, row id, column, stored value, workspace), read past the decrypting type."""
        out = []
        for table in (self.bots, self.installations):
            if not inspect(conn).has_table(table.name):
                continue
            cols = [table.c[n] for n in TOKEN_COLUMNS if n in table.c]
            q = select(table.c.id, table.c.team_id, table.c.enterprise_id,
                       *[type_coerce(c, Text).label(c.name) for c in cols])
            for row in conn.execute(q).mappings():
                out += [(table, row["id"], c.name, row[c.name], row["team_id"] or row["enterprise_id"])
                        for c in cols if row[c.name]]
        return out

    def _rewrite(self, *, everything: bool) -> TokenScan:
        """Check every stored token; encrypt plain ones (all of them again with the first key when
        `everything`). One transaction: when any token can't be decrypted, nothing is changed."""
        scan = TokenScan()
        with self.engine.begin() as conn:
            rows = self._token_rows(conn)
            plain_values: list[tuple[Any, int, str, str]] = []
            for table, row_id, col, value, team in rows:
                scan.tokens += 1
                if TokenCipher.is_plain(value):
                    scan.plain += 1
                    plain_values.append((table, row_id, col, value))
                    continue
                try:
                    plain = self.cipher.decrypt(value)
                except UndecryptableToken:
                    scan.undecryptable.append(str(team))
                    continue
                if everything:
                    plain_values.append((table, row_id, col, plain))
            if scan.undecryptable:
                n, teams = len(scan.undecryptable), sorted(set(scan.undecryptable))
                raise ConfigError(
                    f"LOOPLINE_ENCRYPTION_KEY: {n} stored Slack token{'s' if n > 1 else ''} (of "
                    f"{', '.join(teams[:5])}{' and others' if len(teams) > 5 else ''}) can't be decrypted with "
                    f"any configured key; add the key they were encrypted with ({KEYS_HINT})")
            for table, row_id, col, plain in plain_values:
                # Written through the encrypting column type: stored as ciphertext under the first key.
                conn.execute(table.update().where(table.c.id == row_id).values({col: plain}))
        return scan

    def prepare(self) -> TokenScan:
        """At start: every stored token must decrypt (else one clear ConfigError); plain ones from
        before encryption are encrypted now."""
        return self._rewrite(everything=False)

    def rotate(self) -> TokenScan:
        """`loopline rotate-key`: every token re-encrypted with the first key, so the others can go."""
        return self._rewrite(everything=True)


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


def make_stores(client_id: str, engine: Engine,
                cipher: TokenCipher) -> tuple[EncryptedInstallationStore, SQLAlchemyOAuthStateStore]:
    installs = EncryptedInstallationStore(client_id=client_id, engine=engine, cipher=cipher)
    states = ExpiringStateStore(expiration_seconds=STATE_EXPIRATION_S, engine=engine)
    # The stores own their table definitions; create_all is idempotent.
    installs.create_tables()
    states.create_tables()
    installs.prepare()
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
