"""Slack's posting budget: how fast the delivery loop may post per workspace and per channel.

Slack allows ~1 message/s per channel and a per-workspace rate for chat.postMessage, and a 429 blocks
the method for the whole workspace for `Retry-After` seconds. Two implementations of one small
interface, picked by the database:

* `LocalBudget` (SQLite: one process holds the database): a token bucket per workspace and a cooldown
  per channel in memory, shared by the sender threads of the process.
* `SharedBudget` (PostgreSQL: any number of replicas and schedulers): the same pacing held in the
  `post_budget` table, so N processes together post at the configured rate, not N times it.

The shared design is slot reservation (GCRA): a row per workspace (`channel = ''`) and per channel with
`next_free_at`, the earliest time the next post may start. Reserving a post is ONE statement that moves
the workspace's `next_free_at` to `greatest(next_free_at, now) + 1/rate` and returns the slot it
reserved (the old value, or now), and sets the channel's `next_free_at` to that slot + 1/channel_rate.
The row lock on the workspace row orders every replica's reservations, posts are spread evenly (no
bursts to absorb), and a replica that dies wastes at most the one slot it held. A token-bucket row
(tokens + last refill) would need a read-modify-write with the same lock and gives bursts we don't
want; advisory locks would need a second statement and a held connection.

The slot arithmetic uses the database's clock (`clock_timestamp()`), not bot/clock.py: it is the only
clock every replica shares (hosts drift), and the statement returns the wait as a duration, which the
sender sleeps on its own monotonic clock. These times are never compared with application times, so
tests that pin bot/clock.py are unaffected.

Channels: a claim skips channels whose `next_free_at` is in the future and, in the claim's own
transaction, holds the channel for the length of the lease (so another replica doesn't claim a second
post for it meanwhile); the reservation replaces the hold with slot + 1/channel_rate, and a claim that
ends without posting gives the channel back. A 429 pushes the workspace and the channel to at least
now + Retry-After, so every replica backs off.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from sqlalchemy import exists, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot.core.db import Database, is_postgres
from bot.core.models import PostBudget

WORKSPACE = ""  # the channel key of a workspace's own row


class TokenBucket:
    """Paces calls to `rate` per second (GCRA: each acquire reserves the next free slot)."""

    def __init__(self, rate: float, burst: float = 1.0):
        self.interval = 1.0 / rate
        self.slack = max(0.0, burst - 1.0) * self.interval
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Reserve a slot; returns the monotonic time it starts."""
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now - self.slack)
            self._next = slot + self.interval
            return slot

    def penalise(self, seconds: float) -> None:
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)


class Budget(Protocol):
    def claim_filter(self, team_col: Any, channel_col: Any) -> ColumnElement[bool] | None:
        """A condition for the claim query: the channel may take a post now (None: no condition)."""

    def hold(self, s: Session, team_id: str, channel: str) -> bool:
        """In the claim's transaction: the channel is ours until we post or give it back. False: another
        process holds it (the claim must be abandoned)."""

    def wait_for_slot(self, team_id: str, channel: str, stop: threading.Event) -> bool:
        """Reserve the next post's slot and sleep until it starts; False if `stop` was set meanwhile."""

    def unhold(self, team_id: str, channel: str) -> None:
        """A held channel whose claim ended without a slot reserved."""

    def penalise(self, team_id: str, channel: str, retry_after: float) -> None:
        """Slack answered 429 with this Retry-After."""

    def tidy(self) -> None:
        """Forget entries long past (called now and then)."""


def _sleep_until(deadline: float, stop: threading.Event) -> bool:
    while True:
        delay = deadline - time.monotonic()
        if delay <= 0:
            return True
        if stop.wait(min(delay, 0.5)):
            return False


class LocalBudget:
    """One process's budget: a token bucket per workspace and a cooldown per channel, in memory."""

    def __init__(self, workspace_rate: float, channel_rate: float):
        self.workspace_rate = workspace_rate
        self.channel_interval = 1.0 / channel_rate
        self._buckets: dict[str, TokenBucket] = {}
        self._cooling: dict[str, float] = {}
        self._lock = threading.Lock()

    def bucket(self, team_id: str) -> TokenBucket:
        with self._lock:
            b = self._buckets.get(team_id)
            if b is None:
                b = self._buckets[team_id] = TokenBucket(self.workspace_rate)
            return b

    def _cooling_channels(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            for ch in [ch for ch, t in self._cooling.items() if t <= now]:
                del self._cooling[ch]
            return list(self._cooling)

    def _cool(self, channel: str) -> None:
        with self._lock:
            self._cooling[channel] = time.monotonic() + self.channel_interval

    def claim_filter(self, team_col: Any, channel_col: Any) -> ColumnElement[bool] | None:
        cooling = self._cooling_channels()
        return channel_col.not_in(cooling) if cooling else None

    def hold(self, s: Session, team_id: str, channel: str) -> bool:
        self._cool(channel)
        return True

    def wait_for_slot(self, team_id: str, channel: str, stop: threading.Event) -> bool:
        if not _sleep_until(self.bucket(team_id).reserve(), stop):
            return False
        self._cool(channel)
        return True

    def unhold(self, team_id: str, channel: str) -> None:
        pass  # the channel cools for its usual interval from the claim

    def penalise(self, team_id: str, channel: str, retry_after: float) -> None:
        # The row itself comes back after Retry-After; the workspace slows by one slot (measured: enough
        # for one process, see bench/fanout.py).
        b = self.bucket(team_id)
        b.penalise(b.interval)

    def tidy(self) -> None:
        pass


PB = PostBudget.__table__

_RESERVE = text("""
WITH ws AS (
    INSERT INTO post_budget AS b (team_id, channel, next_free_at)
    VALUES (:team, '', clock_timestamp() + :wi * interval '1 second')
    ON CONFLICT (team_id, channel) DO UPDATE
        SET next_free_at = greatest(b.next_free_at, clock_timestamp()) + :wi * interval '1 second'
    RETURNING b.next_free_at - :wi * interval '1 second' AS slot
), ch AS (
    INSERT INTO post_budget AS c (team_id, channel, next_free_at)
    SELECT :team, :channel, slot + :ci * interval '1 second' FROM ws
    ON CONFLICT (team_id, channel) DO UPDATE SET next_free_at = excluded.next_free_at
)
SELECT extract(epoch FROM slot - clock_timestamp()) FROM ws
""")

_HOLD = text("""
INSERT INTO post_budget AS c (team_id, channel, next_free_at)
VALUES (:team, :channel, clock_timestamp() + :hold * interval '1 second')
ON CONFLICT (team_id, channel) DO UPDATE SET next_free_at = excluded.next_free_at
    WHERE c.next_free_at <= clock_timestamp()
RETURNING 1
""")

_UNHOLD = text("""
UPDATE post_budget SET next_free_at = clock_timestamp()
WHERE team_id = :team AND channel = :channel AND next_free_at > clock_timestamp()
""")

_PENALISE = text("""
UPDATE post_budget SET next_free_at = greatest(next_free_at, clock_timestamp() + :wait * interval '1 second')
WHERE team_id = :team AND channel IN ('', :channel)
""")

_TIDY = text("DELETE FROM post_budget WHERE next_free_at < clock_timestamp() - interval '1 hour'")


class SharedBudget:
    """The budget in PostgreSQL's `post_budget` table, shared by every process on the database."""

    def __init__(self, db: Database, workspace_rate: float, channel_rate: float, *, hold_seconds: float):
        self.db = db
        self.workspace_interval = 1.0 / workspace_rate
        self.channel_interval = 1.0 / channel_rate
        self.hold_seconds = hold_seconds

    def claim_filter(self, team_col: Any, channel_col: Any) -> ColumnElement[bool] | None:
        busy = exists(select(PB.c.team_id).where(PB.c.team_id == team_col, PB.c.channel == channel_col,
                                                 PB.c.next_free_at > func.now()))
        return ~busy

    def hold(self, s: Session, team_id: str, channel: str) -> bool:
        got = s.execute(_HOLD, {"team": team_id, "channel": channel, "hold": self.hold_seconds}).first()
        return got is not None

    def wait_for_slot(self, team_id: str, channel: str, stop: threading.Event) -> bool:
        with self.db.session() as s:
            wait = float(s.execute(_RESERVE, {"team": team_id, "channel": channel, "wi": self.workspace_interval,
                                              "ci": self.channel_interval}).scalar_one())
        return _sleep_until(time.monotonic() + wait, stop)

    def unhold(self, team_id: str, channel: str) -> None:
        with self.db.session() as s:
            s.execute(_UNHOLD, {"team": team_id, "channel": channel})

    def penalise(self, team_id: str, channel: str, retry_after: float) -> None:
        with self.db.session() as s:
            s.execute(_PENALISE, {"team": team_id, "channel": channel, "wait": float(retry_after)})

    def tidy(self) -> None:
        with self.db.session() as s:
            s.execute(_TIDY)


def budget_for(db: Database, settings: Any, *, hold_seconds: float) -> Budget:
    """The shared budget on PostgreSQL, the in-process one on SQLite."""
    rates = (settings.loopline_workspace_rate, settings.loopline_channel_rate)
    if is_postgres(db.engine):
        return SharedBudget(db, *rates, hold_seconds=hold_seconds)
    return LocalBudget(*rates)
