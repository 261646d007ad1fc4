"""Claim with a lease: the one way due rows are taken, for jobs (bot/queue/core.py), announcement
deliveries (bot/features/announcements/delivery.py) and digest runs (bot/features/digests/jobs.py).

A row is free when it has no lease (`locked_until`) or its lease expired: the process holding it died
or gave up, so it is taken again (and the work on it is idempotent). `due()` reads free rows;
PostgreSQL skips rows another replica is claiming right now (`FOR UPDATE SKIP LOCKED`), SQLite
serialises writers anyway. `take()` sets the lease with an UPDATE that checks the row is still free,
so of two claimers that read the same row exactly one gets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, or_, update
from sqlalchemy.orm import Session

from bot.core.db import Database, is_postgres

Q = TypeVar("Q", bound=Select[Any])


def free(model: Any, now: datetime) -> ColumnElement[bool]:
    """No lease on the row, or an expired one."""
    return or_(model.locked_until.is_(None), model.locked_until < now)


def none_due(db: Database, query: Select[Any]) -> bool:
    """True when `query` finds no row, known without a claim's write transaction.

    On SQLite a claim's transaction takes the database's one write lock (BEGIN IMMEDIATE), the lock the
    edge needs for every ack; a poller that finds nothing must not have taken it. py-spy under
    bench/ack.py found the four delivery threads, the digest poster and the job worker taking turns at it
    with the edge's writer (acks' p99 170-600 ms with the worker in threads). Reading first takes no lock
    (WAL); a row that turns due just after is found by the next poll or wake-up. On PostgreSQL looking
    locks nothing (FOR UPDATE SKIP LOCKED locks only the rows it returns): the claim looks itself."""
    if db.is_postgres:
        return False
    with db.read_session() as s:
        return s.execute(query.limit(1)).first() is None


def due(session: Session, query: Q, *, of: Any = None) -> Q:
    """`query` (which selects rows that are `free()`), locked for claiming: rows another PostgreSQL
    transaction is claiming are skipped rather than waited for. `of`: the table to lock in a join."""
    if is_postgres(session):
        return query.with_for_update(skip_locked=True, **({"of": of} if of is not None else {}))
    return query


def take(session: Session, model: Any, ids: Sequence[int], *, now: datetime, until: datetime,
         where: Sequence[ColumnElement[bool]] = (), **values: Any) -> set[int]:
    """Lease the rows `ids` until `until` (and set `values`) where they are still free and `where` still
    holds; the ids taken (a claimer that lost the race to another gets fewer, maybe none)."""
    if not ids:
        return set()
    result = session.execute(update(model).where(model.id.in_(list(ids)), free(model, now), *where)
                             .values(locked_until=until, **values).returning(model.id))
    return set(result.scalars())
