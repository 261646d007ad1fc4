"""An acked reaction survives a Slack outage of hours.

The item is stored as soon as the worker sees the event, with no Web API call (captured by the
reactor, vote counted, text pending); its text and permalink are fetched by a separate job. Transient
Slack errors are retried with capped backoff for 24 hours from the job's creation (age, not a count of
attempts); a fetch that finally gives up leaves the item stored and tells the reactor privately.

The server runs on the pinned clock (tests/conftest.py); "hours later" is the clock moved forward, and
the real worker retries against the fake Web API answering 503.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot.core import clock
from bot.core.models import Feedback, Job
from bot.queue.core import RETRY, TransientError
from tests.conftest import CUSTOMER, PINNED_NOW, REP, REP2, export

SOC2 = "Need an audit trail for role changes — our SOC 2 auditors asked 🙏 <!here> & <@U0PM>"


def fetch_job(db):
    with db.read_session() as s:
        return s.scalar(select(Job).where(Job.kind == "feedback.fetch").order_by(Job.id))


def item(db) -> Feedback:
    with db.read_session() as s:
        found = s.scalar(select(Feedback))
        assert found is not None
        return found


def jump(server, to) -> None:
    clock.set_source(clock.running_from(to))
    server.rt.worker.wake()


def test_a_reaction_in_a_slack_outage_is_stored_at_once_and_the_capturer_told_when_fetching_gives_up(
        server, slack, fake, db):
    ts = fake.add_message("C0ACME", SOC2, user=CUSTOMER)
    fake.fail_next("reactions.get", status=503, times=None)
    assert slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bulb",
                          ext_shared=True).status_code == 200

    # Stored at once, although Slack answers nothing: captured by the reactor, the vote counted.
    [rec] = fake.wait_until(lambda: export(db), timeout=10)
    assert rec["captured_by"] == REP and rec["votes"] == 1 and rec["kind"] == "idea"
    assert rec["source"] == "reaction" and rec["channel"] == "C0ACME" and rec["ts"] == ts
    assert item(db).text_pending
    fake.wait_until(lambda: (j := fetch_job(db)) is not None and j.error and j.attempts >= 1, timeout=15)

    # 23 hours on, Slack still answers 503: retried again, however many attempts that has taken.
    with db.session() as s:
        s.execute(update(Job).where(Job.kind == "feedback.fetch").values(attempts=40))
    jump(server, PINNED_NOW + timedelta(hours=23))
    job = fake.wait_until(lambda: (j := fetch_job(db)).attempts > 40 and j.locked_until is None and j, timeout=15)
    assert job.status == "pending"
    assert job.run_after - clock.now() <= timedelta(minutes=15, seconds=5)  # capped backoff
    assert fake.ephemerals(user=REP) == []

    # Past 24 hours: the fetch gives up. The item stays, text pending, and the reactor is told privately.
    jump(server, PINNED_NOW + timedelta(hours=24, minutes=20))
    fake.wait_until(lambda: fetch_job(db).status == "failed", timeout=15)
    [note] = fake.wait_until(lambda: fake.ephemerals(user=REP), timeout=15)
    assert note["channel"] == "C0ACME"
    assert f"FB-{rec['id'].split('-')[1]}" in note["text"] and "not" in note["text"]
    assert "Add details" in str(note["blocks"])
    assert fake.bot_messages("C0ACME") == []  # nothing visible in the customer's channel
    kept = item(db)
    assert kept.status == "active" and kept.text_pending and kept.captured_by == REP
    assert fake.call_count("reactions.get") >= 3
    assert len(export(db)) == 1


def test_the_text_arrives_when_slack_comes_back_hours_later_and_each_reactor_is_confirmed_once(
        server, slack, fake, db):
    ts = fake.add_message("C0ACME", SOC2, user=CUSTOMER)
    fake.fail_next("reactions.get", status=503, times=None)
    slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bug")
    slack.reaction("reaction_added", user=REP2, channel="C0ACME", ts=ts, reaction="memo")
    fake.wait_until(lambda: (r := export(db)) and r[0]["votes"] == 2, timeout=10)
    assert item(db).text_pending

    fake.clear_faults()
    jump(server, PINNED_NOW + timedelta(hours=6))
    fake.wait_until(lambda: not item(db).text_pending, timeout=20)
    [rec] = export(db)
    assert rec["text"] == SOC2 and rec["permalink"] and rec["reporter"] == CUSTOMER and rec["votes"] == 2
    mine = fake.wait_until(lambda: fake.ephemerals(user=REP), timeout=15)
    # REP2 is not in the customer's channel: they hear it by DM.
    theirs = fake.wait_until(lambda: fake.dms(REP2), timeout=15)
    server.settle()
    assert len(fake.ephemerals(user=REP)) == 1 and len(fake.dms(REP2)) == 1 and not fake.ephemerals(user=REP2)
    assert "Captured as" in mine[0]["text"] and "&lt;!here&gt;" in str(mine[0]["blocks"])
    assert "vote" in theirs[0]["text"]


def test_one_retry_policy_capped_backoff_for_24_hours_by_age_and_retry_after_honoured():
    now = clock.now()
    e = TransientError("service_unavailable")
    delays = [RETRY.delay(e, attempt=n, since=now) for n in range(1, 60)]
    assert all(d is not None and 0 < d <= 15 * 60 for d in delays)
    assert max(d for d in delays if d is not None) > 7 * 60  # it does back off to the cap
    assert RETRY.delay(e, attempt=500, since=now - timedelta(hours=23, minutes=59)) is not None
    assert RETRY.delay(e, attempt=1, since=now - timedelta(hours=24)) is None
    assert RETRY.delay(TransientError("ratelimited", retry_after=42), attempt=3, since=now) == 42
