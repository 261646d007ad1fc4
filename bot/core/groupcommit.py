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
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import delete
from sqlalchemy.orm import Session

from bot.core.common import enqueue, insert_ignore_many
from bot.core.db import Database, is_unavailable
from bot.core.models import Job

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
    # Whether `run_batch` writes with a single statement on PostgreSQL (reads besides are fine): a commit
    # of such units alone then runs without BEGIN and COMMIT (Database.autocommit_write), one round trip
    # instead of three. Each round trip is a wait for the GIL the edge's event loop holds, and those
    # waits were most of the writer's time under load (README "Measured on this machine", *Acks*).
    one_statement_on_postgres = False

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


class WriteFailed(RuntimeError):
    """The write was not committed: the request must not be acknowledged as done."""


@dataclass(frozen=True)
class WriterHealth:
    """What /healthz says about the writer (bot/server.py)."""

    ok: bool
    reason: str | None
    last_commit_s: float | None  # seconds since a commit last succeeded (None: none yet)
    queued: int  # writes waiting for the writer
    busy_s: float | None = None  # how long the batch in hand has been running (None: idle)


class _Probe:
    """A small real write (a row into `jobs` and out again in one transaction): a full disk, a read-only
    or unreachable database fails it the way it fails the inbox, without leaving anything behind. Its
    8 KB payload is larger than a typical inbox row, so that on a nearly full disk it is not the one
    write that still fits."""

    wakes_worker = False

    def __call__(self, session: Session) -> None:
        key = f"healthz-probe:{uuid.uuid4().hex}"
        enqueue(session, key=key, kind="healthz.probe", team_id=None, payload={"pad": os.urandom(4096).hex()})
        session.execute(delete(Job).where(Job.key == key))


PROBE = _Probe()


class GroupCommitter:
    # A commit carrying this many requests means the edge is under load (see `busy`).
    BUSY_BATCH = 4
    # ... for this long after it (a worker in another process mirrors the window: bot/companion.py).
    BUSY_WINDOW = 0.05

    def __init__(self, db: Database, *, on_commit: Callable[[], None] | None = None, max_batch: int = 256,
                 timeout: float = 10.0, stall_after: float = 30.0, probe_every: float = 10.0,
                 on_batch: Callable[[int], None] | None = None, on_busy: Callable[[], None] | None = None):
        """`timeout`: a caller waits this long for its commit, then gets WriteFailed (Slack's own deadline
        is 3 s, so nothing waits on a longer answer). `stall_after`: a batch running this long makes the
        writer unhealthy. `probe_every`: with no commit for this long, /healthz asks for a probe write."""
        self.db = db
        self.on_commit = on_commit
        self.on_batch = on_batch  # told each batch's size (metrics)
        self.on_busy = on_busy  # told when a batch shows the edge under load (a worker in another process)
        self.max_batch = max_batch
        self.timeout = timeout
        self.stall_after = stall_after
        self.probe_every = probe_every
        self._q: queue.SimpleQueue[tuple[Unit, asyncio.AbstractEventLoop | None, Any] | None] = queue.SimpleQueue()
        self.commits = 0
        self.units = 0
        self.busy_until = 0.0
        self._closed = False
        self._busy_since: float | None = None  # monotonic start of the batch in hand
        self._last_ok: float | None = None  # monotonic time a commit last succeeded
        self._refused: str | None = None  # why the database refused the last probe, until a commit succeeds
        self._probe_at = 0.0
        self._probe_queued = False
        # A thread, not the event loop: committing inline on the loop was measured slower (bench/ack.py,
        # 0.19x vs 0.29x of bare Bolt), as every commit stalled the parsing of the next requests.
        self._thread = threading.Thread(target=self._run, name="loopline-groupcommit", daemon=True)
        self._thread.start()

    def busy(self) -> bool:
        """True while requests are arriving faster than one per commit: Slack's 3-second ack
        deadline is hard, the worker's work is not, so the worker steps aside (bot/queue/core.py)."""
        return time.monotonic() < self.busy_until

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run `fn` in a group-committed transaction; returns once that transaction has committed.
        Raises the unit's own error, or WriteFailed: in both cases nothing was acknowledged."""
        if self._closed or not self._thread.is_alive():
            raise WriteFailed("the database writer is not running")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._q.put((fn, loop, fut))
        expiry = loop.call_later(self.timeout, _expire, fut, self.timeout)
        try:
            return await fut
        finally:
            expiry.cancel()

    async def insert(self, model: type[Any], values: dict[str, Any], *, conflict: tuple[str, ...]) -> None:
        """Durably insert a row unless its natural key exists (the inbox's hot path)."""
        await self.run(RowInsert(model, values, conflict))

    def close(self) -> None:
        self._closed = True
        self._q.put(None)
        self._thread.join(timeout=10)

    def health(self) -> WriterHealth:
        """Cheap (no I/O): whether writes go through. Asks for a probe write, at most one in flight and
        rate-limited, when the writer has been idle or the database refused the last one."""
        now = time.monotonic()
        since = None if self._last_ok is None else now - self._last_ok
        queued = self._q.qsize()
        busy = self._busy_since
        busy_s = None if busy is None else now - busy
        if self._closed or not self._thread.is_alive():
            return WriterHealth(False, "the database writer is not running", since, queued, busy_s)
        if busy_s is not None and busy_s > self.stall_after:
            return WriterHealth(False, f"the database writer has made no progress for {busy_s:.0f} s "
                                       f"({queued} writes waiting)", since, queued, busy_s)
        if self._refused is not None:
            self._ask_probe(now, 1.0)
            return WriterHealth(False, f"the database refuses writes: {self._refused}", since, queued, busy_s)
        if since is None or since > self.probe_every:
            self._ask_probe(now, self.probe_every)
        return WriterHealth(True, None, since, queued, busy_s)

    def _ask_probe(self, now: float, every: float) -> None:
        if self._probe_queued or now - self._probe_at < every or self._closed:
            return
        self._probe_queued, self._probe_at = True, now
        self._q.put((PROBE, None, None))

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
            self._busy_since = time.monotonic()
            try:
                self._commit(batch)
            except BaseException as e:  # a fault of the committer itself: fail these callers, keep serving
                log.exception("group commit failed")
                for _, loop, fut in batch:
                    self._deliver(loop, fut, False, _failed(e))
            finally:
                self._busy_since = None
            if stop:
                return

    def _commit(self, batch: list[tuple[Unit, Any, Any]]) -> None:
        # A caller that gave up (timed out) has been answered 5xx: its write is not needed any more.
        live = [b for b in batch if b[2] is None or not b[2].done()]
        units = [fn for fn, _, _ in live]
        if not units:
            return
        outcomes: list[tuple[bool, Any]]
        try:
            with self._session_for(units) as s:
                results = self._execute(s, units)
            outcomes = [(True, r) for r in results]
        except BaseException:
            # One failing unit must not sink the others: replay each alone (units are idempotent).
            outcomes = [self._alone(fn) for fn in units]
        now = time.monotonic()
        # The batch is done before any caller hears of it: a caller that checks health right after its
        # write returned must not see the finished batch as still in hand (stalled).
        self._busy_since = None
        committed = [fn for fn, (ok, _) in zip(units, outcomes, strict=True) if ok]
        if committed:
            self._last_ok, self._refused = now, None
        else:
            # The database's own refusals (not a unit's broken constraint) and a failed probe mean the
            # database refuses writes; a probe keeps checking, so health clears without traffic.
            refusal = next((v for fn, (_, v) in zip(units, outcomes, strict=True)
                            if fn is PROBE or is_unavailable(v)), None)
            if refusal is not None:
                self._refused = _first_line(refusal)
            self._ask_probe(now, 1.0)
        if PROBE in units:
            self._probe_queued = False
        self.commits += 1
        self.units += len(units)
        if self.on_batch is not None:
            self.on_batch(len(units))
        if len(batch) >= self.BUSY_BATCH:
            self.busy_until = now + self.BUSY_WINDOW
            if self.on_busy is not None:
                self.on_busy()
        if self.on_commit and any(getattr(fn, "wakes_worker", True) for fn in committed):
            try:
                self.on_commit()
            except BaseException:
                log.exception("on_commit hook failed")
        for (_, loop, fut), (ok, value) in zip(live, outcomes, strict=True):
            self._deliver(loop, fut, ok, value)

    def _session_for(self, units: list[Unit]) -> AbstractContextManager[Session]:
        """A transaction, or on PostgreSQL a session without one when the units are all of one batch
        that writes with a single statement (`Batched.one_statement_on_postgres`): that statement is
        its own transaction, so the units are committed together or not at all, as in a transaction."""
        first = units[0]
        if (isinstance(first, Batched) and first.one_statement_on_postgres and self.db.is_postgres
                and all(type(u) is type(first) and u.batch_key == first.batch_key for u in units)):
            return self.db.autocommit_write()
        return self.db.write_session()

    def _alone(self, fn: Unit) -> tuple[bool, Any]:
        """One unit in its own transaction; its outcome is known only once its commit has returned."""
        try:
            with self.db.write_session() as s:
                value = fn(s)
        except BaseException as e:  # handed back to the awaiting request, which answers 5xx
            return False, _failed(e)
        return True, value

    @staticmethod
    def _deliver(loop: asyncio.AbstractEventLoop | None, fut: Any, ok: bool, value: Any) -> None:
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(_resolve, fut, ok, value)
        except RuntimeError:  # that caller's event loop is closed: nobody is waiting any more
            log.warning("a write finished after its caller went away")

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


def _failed(e: BaseException) -> Exception:
    """An exception a caller can be given: its own, or WriteFailed for exits and interrupts (raising
    SystemExit inside the event loop would stop the server)."""
    if isinstance(e, Exception):
        return e
    err = WriteFailed(f"the write was interrupted ({type(e).__name__})")
    err.__cause__ = e
    return err


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _expire(fut: asyncio.Future[Any], timeout: float) -> None:
    if not fut.done():
        fut.set_exception(WriteFailed(f"no commit within {timeout:.0f} s"))


def _resolve(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
