"""The group committer: many requests per commit, and a failure stays with the request that caused it.

These drive bot/core/groupcommit.py directly against the real test database. A request is acked only after
its write is durable, so the writer must (1) report success only for a unit whose commit succeeded,
(2) give each request its own outcome, and (3) survive anything a unit or a caller does, failing the
callers it cannot serve instead of leaving every later write waiting forever.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.common import enqueue
from bot.core.groupcommit import GroupCommitter, WriteFailed
from bot.core.models import Job
from tests.support.faults import commit_time_fk_violation, write_lock_held

NOTE = "Ünïcode & <tags> 🚀 — “quotes” <!channel>"


def job(key: str) -> Callable[[Session], str]:
    def unit(s: Session) -> str:
        enqueue(s, key=key, kind="test.noop", team_id="T0001", payload={"note": NOTE})
        return key

    return unit


def keys(db: Any) -> set[str]:
    with db.read_session() as s:
        return set(s.scalars(select(Job.key)))


async def one_commit(writer: GroupCommitter, units: list[Callable[[Session], Any]]) -> list[Any]:
    """Run `units` in one batch: a first unit holds the writer thread until all of them are queued."""
    started, gate = threading.Event(), threading.Event()

    def hold(_: Session) -> None:
        started.set()
        gate.wait(10)

    first = asyncio.ensure_future(writer.run(hold))
    await asyncio.to_thread(started.wait, 10)
    rest = [asyncio.ensure_future(writer.run(u)) for u in units]
    await asyncio.sleep(0.05)  # every task has put its unit on the queue
    gate.set()
    # A writer that died leaves these futures unresolved: bound the wait so the test fails, not hangs.
    out = await asyncio.wait_for(asyncio.gather(first, *rest, return_exceptions=True), timeout=15)
    return out[1:]


def write_now(writer: GroupCommitter, key: str) -> str:
    return asyncio.run(asyncio.wait_for(writer.run(job(key)), timeout=10))


@pytest.fixture
def writer(db):
    w = GroupCommitter(db)
    yield w
    w.close()


def test_a_unit_whose_commit_fails_fails_alone_and_the_batch_and_writer_go_on(db, writer):
    with commit_time_fk_violation(db, job_key_like="poison:%", feedback_text_like="%☠%"):
        results = asyncio.run(one_commit(writer, [job("good:1"), job("poison:1"), job("good:2"), job("good:3")]))
    assert results[0] == "good:1" and results[2:] == ["good:2", "good:3"]
    assert isinstance(results[1], IntegrityError), results[1]  # its own error, reported to it only
    assert keys(db) == {"good:1", "good:2", "good:3"}
    assert write_now(writer, "after") == "after"
    assert writer.health().ok


def _system_exit(_: Session) -> None:
    raise SystemExit(3)


def test_a_unit_raising_a_base_exception_fails_its_caller_only(db, writer):
    results = asyncio.run(one_commit(writer, [job("good:1"), _system_exit, job("good:2")]))
    assert results[0] == "good:1" and results[2] == "good:2"
    assert isinstance(results[1], WriteFailed) and isinstance(results[1].__cause__, SystemExit)
    assert write_now(writer, "after") == "after"
    assert keys(db) == {"good:1", "good:2", "after"}


def test_a_failing_commit_hook_neither_fails_the_committed_write_nor_stops_the_writer(db):
    def hook() -> None:
        raise SystemExit("the worker's wake-up hook misbehaved")

    w = GroupCommitter(db, on_commit=hook)
    try:
        assert write_now(w, "first") == "first"
        assert write_now(w, "second") == "second"
    finally:
        w.close()
    assert keys(db) == {"first", "second"}


def test_a_caller_whose_event_loop_is_gone_does_not_stop_the_writer(db, writer):
    started, gate = threading.Event(), threading.Event()

    def hold(s: Session) -> str:
        started.set()
        gate.wait(10)
        return job("orphan")(s)

    async def give_up() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(writer.run(hold), timeout=0.2)

    asyncio.run(give_up())  # that loop is closed now; its result must be delivered nowhere
    assert started.wait(5)
    gate.set()
    assert write_now(writer, "after") == "after"
    assert keys(db) == {"orphan", "after"}  # committed even though nobody was left to hear it


def test_after_close_writes_fail_at_once_and_health_says_why(db):
    w = GroupCommitter(db)
    w.close()
    t = time.monotonic()
    with pytest.raises(WriteFailed):
        write_now(w, "too-late")
    assert time.monotonic() - t < 2
    health = w.health()
    assert not health.ok and "not running" in (health.reason or "")


def test_health_reports_a_writer_stuck_on_a_lock_and_recovers(db):
    w = GroupCommitter(db, stall_after=0.5)
    try:
        with write_lock_held(db):
            done: list[Any] = []
            t = threading.Thread(target=lambda: done.append(write_now(w, "waited")), daemon=True)
            t.start()
            deadline = time.monotonic() + 10
            while w.health().ok and time.monotonic() < deadline:
                time.sleep(0.05)
            health = w.health()
            assert not health.ok and "no progress" in (health.reason or ""), health
        t.join(10)
        assert done == ["waited"]
        assert w.health().ok
    finally:
        w.close()


def test_a_burst_is_told_to_a_worker_in_another_process(db):
    """A commit carrying several requests means the edge is under load: the writer says so (`on_busy`, which
    `loopline serve` passes down its worker process's pipe); a lone request's commit does not."""
    told: list[float] = []
    writer = GroupCommitter(db, on_busy=lambda: told.append(time.monotonic()))
    try:
        asyncio.run(one_commit(writer, [job("alone")]))
        assert told == [] and not writer.busy()
        asyncio.run(one_commit(writer, [job(f"burst-{i}") for i in range(8)]))
        assert len(told) == 1 and writer.busy()
    finally:
        writer.close()
