"""SQLite's one write lock, shared by the edge's writer and the worker's threads (bot/core/db.py,
bot/queue/lease.py): pollers that find nothing don't take it, and writers of one process take turns on
a lock of their own that no way of ending a transaction leaves held."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text

from bot.core.common import enqueue
from bot.core.models import Job
from bot.core.slack_client import SlackClients
from bot.features.announcements.delivery import DeliveryLoop
from bot.features.digests.jobs import claim_run
from bot.queue.core import Jobs, Worker
from tests.support.faults import write_lock_held


@pytest.fixture
def sqlite_db(db):
    if db.is_postgres:
        pytest.skip("SQLite's write lock (PostgreSQL locks rows, and looking locks nothing)")
    return db


def test_idle_pollers_look_without_taking_the_write_lock(sqlite_db, settings):
    db = sqlite_db
    worker = Worker(db, SlackClients(settings), settings, jobs=Jobs())
    delivery = DeliveryLoop(db, SlackClients(settings), settings)
    answers: list[object] = []
    with write_lock_held(db):  # a long write elsewhere; nothing is due
        # Each poller answers "nothing to do" while the lock is held, instead of queueing behind it.
        done = threading.Event()

        def poll() -> None:
            answers.extend([worker.claim(), delivery.claim(), claim_run(db)])
            done.set()

        threading.Thread(target=poll, daemon=True).start()
        assert done.wait(20), "an idle poller waited for the write lock"
    assert answers == [[], None, None]
    # Work that is due is still claimed.
    with db.session() as s:
        enqueue(s, key="ev:Ev0DUE", kind="test.noop", team_id="T0001", payload={"note": "Ünïcode & <b>"})
    assert [j.key for j in worker.claim()] == ["ev:Ev0DUE"]


def test_writers_of_one_process_take_turns_and_every_ending_hands_the_turn_on(sqlite_db):
    db = sqlite_db

    def write(key: str) -> None:
        with db.session() as s:
            enqueue(s, key=key, kind="test.noop", team_id="T0001", payload={})

    # Committed, rolled back by an error, a connection closed in the middle of a transaction, a BEGIN
    # that failed: after each, another writer gets its turn at once.
    write("a")
    with pytest.raises(RuntimeError), db.session() as s:
        enqueue(s, key="b", kind="test.noop", team_id="T0001", payload={})
        raise RuntimeError("a listener's bug")
    c = db.engine.connect()
    c.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: this connection holds the turn
    c.invalidate()  # closes the sqlite3 connection mid-transaction
    c.close()
    write("c")

    # Two threads writing at once: the second waits for the first's commit, then goes.
    first_in, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow() -> None:
        with db.session() as s:
            enqueue(s, key="slow", kind="test.noop", team_id="T0001", payload={})
            first_in.set()
            release.wait(10)
            order.append("slow commits")

    t = threading.Thread(target=slow)
    t.start()
    assert first_in.wait(10)
    t2 = threading.Thread(target=lambda: (write("fast"), order.append("fast committed")))
    t2.start()
    t2.join(0.3)
    assert t2.is_alive()  # waiting for its turn
    release.set()
    t.join(10)
    t2.join(10)
    assert order == ["slow commits", "fast committed"]
    with db.read_session() as s:
        assert set(s.scalars(select(Job.key))) == {"a", "c", "slow", "fast"}
