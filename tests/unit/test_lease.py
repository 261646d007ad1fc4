"""One claim-with-lease (bot/queue/lease.py) for jobs, digest runs and deliveries: a row is taken by one
claimer only, even when two read it at the same moment, and taken again once its lease has expired."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.core import clock
from bot.core.common import enqueue
from bot.core.models import DigestRun, Job
from bot.core.slack_client import SlackClients
from bot.features.digests.jobs import claim_run
from bot.queue import lease
from bot.queue.core import Worker


def _job(db, key="fb:Ü-1 <!channel> 🧾"):
    with db.session() as s:
        enqueue(s, key=key, kind="feedback.fetch", team_id="T0001", payload={"text": "export & <b>"})
        return s.scalar(select(Job.id).where(Job.key == key))


def test_of_two_claimers_that_read_the_same_row_one_takes_it(db):
    jid = _job(db)
    now, until = clock.now(), clock.now() + timedelta(minutes=1)
    free_jobs = select(Job.id).where(lease.free(Job, now))
    with db.read_session() as s:
        seen_first = list(s.scalars(free_jobs))  # the first claimer has read the row, not written yet
    with db.session() as s:
        seen_second = list(s.scalars(lease.due(s, free_jobs)))
        assert lease.take(s, Job, seen_second, now=now, until=until) == {jid}
    assert seen_first == seen_second == [jid]
    with db.session() as s:  # the first claimer's write comes second: nothing left for it
        assert lease.take(s, Job, seen_first, now=now, until=until) == set()


def test_a_worker_takes_a_job_once_and_again_after_its_lease_expired(db, settings):
    jid = _job(db)
    one, two = (Worker(db, SlackClients(settings, None, db), settings, name=n) for n in ("one", "two"))
    [job] = one.claim()
    assert job.id == jid and job.attempts == 1
    assert two.claim() == []
    with db.session() as s:
        s.get(Job, jid).locked_until = clock.now() - timedelta(seconds=1)  # the first worker died
    [again] = two.claim()
    assert again.id == jid and again.attempts == 2
    with db.read_session() as s:
        assert s.get(Job, jid).locked_by == "two"


def test_a_digest_run_is_claimed_once(db):
    now = clock.now()
    with db.session() as s:
        run = DigestRun(team_id="T0001", channel="C0PRODUCT", period_key="weekly:2026-06-08",
                        period_start=now - timedelta(days=7), period_end=now)
        s.add(run)
        s.flush()
        rid = run.id
    assert claim_run(db, now=now) == rid
    assert claim_run(db, now=now) is None
    assert claim_run(db, now=now + timedelta(hours=1)) == rid  # the lease ran out: taken again
    with db.read_session() as s:
        got = s.get(DigestRun, rid)
        assert got.status == "posting" and got.attempts == 2
