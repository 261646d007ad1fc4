"""Durable writes before the ack, many requests per commit.

The edge must persist what Slack sent before it answers (so a crash after the ack loses nothing),
but a commit per request would cap throughput at the disk's fsync rate. Requests hand their unit of
work to one writer thread, which runs every unit that queued up meanwhile in a single transaction
and then wakes each waiting request. Under load a commit carries dozens of requests; alone, a
request waits for just its own commit.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from bot.db import Database
from bot.services.common import insert_ignore_many

T = TypeVar("T")
log = logging.getLogger(__name__)

Unit = Callable[[Session], Any]


class Batched:
    """A unit whose kind can be done for many requests at once: `run_batch` gets every unit of its
    class (and `batch_key`) queued in one commit and returns their results in order. Plain
    callables run one by one."""

    batch_key: Any = None
    # Whether a commit holding this unit may have given the worker something to do; a commit of
    # /feedback captures only must not wake it (each wake is a claim transaction competing for the lock).
    wakes_worker = True

    @classmethod
    def run_batch(cls, session: Session, units: list[Any]) -> list[Any]:
        raise NotImplementedError

    def __call__(self, session: Session) -> Any:
        return type(self).run_batch(session, [self])[0]


class RowInsert(Batched):
    """An idempotent single-row insert; rows of one table go out as one executemany per commit."""

    __slots__ = ("batch_key", "values")

    def __init__(self, model: type[Any], values: dict[str, Any], conflict: tuple[str, ...]):
        self.batch_key, self.values = (model, conflict), values

    @classmethod
    def run_batch(cls, session: Session, units: list[Any]) -> list[Any]:
        model, conflict = units[0].batch_key
        insert_ignore_many(session, model, [u.values for u in units], conflict=list(conflict))
        return [None] * len(units)


class GroupCommitter:
    # A commit carrying this many requests means the edge is under load (see `busy`).
    BUSY_BATCH = 4

    def __init__(self, db: Database, *, on_commit: Callable[[], None] | None = None, max_batch: int = 256):
        self.db = db
        self.on_commit = on_commit
        self.max_batch = max_batch
        self._q: queue.SimpleQueue[tuple[Unit, asyncio.AbstractEventLoop | None, Any] | None] = queue.SimpleQueue()
        # A thread, not the event loop: committing inline on the loop was measured slower (bench/ack.py,
        # 0.19x vs 0.29x of bare Bolt), as every commit stalled the parsing of the next requests.
        self._thread = threading.Thread(target=self._run, name="loopline-groupcommit", daemon=True)
        self._thread.start()
        self.commits = 0
        self.units = 0
        self.busy_until = 0.0

    def busy(self) -> bool:
        """True while requests are arriving faster than one per commit: Slack's 3-second ack
        deadline is hard, the worker's work is not, so the worker steps aside (bot/worker/core.py)."""
        return time.monotonic() < self.busy_until

    async def run(self, fn: Callable[[Session], T]) -> T:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._q.put((fn, loop, fut))
        return await fut

    async def insert(self, model: type[Any], values: dict[str, Any], *, conflict: tuple[str, ...]) -> None:
        """Durably insert a row unless its natural key exists (the inbox's hot path)."""
        await self.run(RowInsert(model, values, conflict))

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._q.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[Unit, Any, Any]]) -> None:
        try:
            with self.db.session() as s:
                results = self._execute(s, [fn for fn, _, _ in batch])
            outcomes: list[tuple[bool, Any]] = [(True, r) for r in results]
        except Exception:
            # One failing unit must not sink the others: replay each alone (units are idempotent).
            outcomes = []
            for fn, _, _ in batch:
                try:
                    with self.db.session() as s:
                        outcomes.append((True, fn(s)))
                except Exception as e:  # handed back to the awaiting request, which reports it
                    outcomes.append((False, e))
        self.commits += 1
        self.units += len(batch)
        if len(batch) >= self.BUSY_BATCH:
            self.busy_until = time.monotonic() + 0.05
        if self.on_commit and any(getattr(fn, "wakes_worker", True) for fn, _, _ in batch):
            try:
                self.on_commit()
            except Exception:
                log.exception("on_commit hook failed")
        for (_, loop, fut), (ok, value) in zip(batch, outcomes, strict=True):
            if loop is not None:
                loop.call_soon_threadsafe(_resolve, fut, ok, value)


    @staticmethod
    def _execute(session: Session, units: list[Unit]) -> list[Any]:
        """Batched units go out grouped (one statement for many requests); other units run in order."""
        results: list[Any] = [None] * len(units)
        groups: dict[tuple[type[Batched], Any], list[int]] = {}
        for i, unit in enumerate(units):
            if isinstance(unit, Batched):
                groups.setdefault((type(unit), unit.batch_key), []).append(i)
            else:
                results[i] = unit(session)
        for (kind, _), idx in groups.items():
            for i, r in zip(idx, kind.run_batch(session, [units[i] for i in idx]), strict=True):
                results[i] = r
        return results


def _resolve(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
