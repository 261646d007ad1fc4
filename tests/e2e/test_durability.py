"""Exactly-once capture across crashes, retries and a slow Web API."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from bot.core.models import Job
from tests.support.env import BOT_TOKEN, CUSTOMER, REP, REP2, SIGNING_SECRET, export
from tests.support.process import BotProcess, bot_env
from tests.support.slack_requests import SlackSender


@pytest.fixture
def env(fake, db_url, db):
    return bot_env(fake, db_url, SIGNING_SECRET, BOT_TOKEN, LOOPLINE_JOB_LEASE_SECONDS="3")


def test_acked_captures_survive_kill_9_and_complete_after_restart(env, fake, db, tmp_path):
    # A web-only replica acks and writes the inbox, then dies hard before any worker touched it.
    texts = [f"Bulk export of invoices #{i} — “fails” for accounts > 5k seats & <ACME-{i}>" for i in range(12)]
    stamps = [fake.add_message("C0ACME", t, user=CUSTOMER) for t in texts]
    web = BotProcess.serve(env, log=tmp_path / "web.log", extra=("--no-scheduler",))
    sender = SlackSender(web.url, SIGNING_SECRET)
    try:
        for ts in stamps:
            assert sender.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bug").status_code == 200
        r = sender.command("/feedback", "Sandbox resets wipe our SAML config 😬", user=REP2)
        assert r.status_code == 200 and "FB-" in r.json()["text"]
    finally:
        web.kill9()
        sender.close()
    with db.read_session() as s:
        # The duplicate check a capture queues right after its ack is not counted: it may or may not have
        # been written before the kill (a lost one costs only the suggestion).
        assert s.scalar(select(func.count()).select_from(Job).where(
            Job.status == "pending", Job.kind != "feedback.similar")) == len(stamps)
    assert fake.call_count("reactions.get") == 0

    # Restart with the worker: everything acked is completed, once.
    full = BotProcess.serve(env, log=tmp_path / "full.log")
    try:
        fake.wait_until(lambda: len(export(db)) == len(stamps) + 1, timeout=40)
        fake.wait_until(lambda: len(confirmations(fake, REP)) == len(stamps), timeout=40)
    finally:
        full.stop()
    recs = export(db)
    assert sorted(r["text"] for r in recs if r["source"] == "reaction") == sorted(texts)
    assert all(r["votes"] == 1 and r["kind"] == "bug" for r in recs if r["source"] == "reaction")


def test_worker_killed_mid_job_is_finished_by_the_next_process_once(env, fake, db, tmp_path):
    ts = fake.add_message("C0ACME", "Audit log export is missing IP addresses", user=CUSTOMER)
    fake.latency_for["reactions.get"] = 30.0  # the worker is inside the Web API call when we kill it
    first = BotProcess.serve(env, log=tmp_path / "a.log")
    sender = SlackSender(first.url, SIGNING_SECRET)
    try:
        sender.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="memo")
        # Generous bounds: the worker process runs at nice +10, and CI runs both databases' suites side by
        # side on two cores, where it was seen taking 10 s just to start (and the test failing at 10 s).
        fake.wait_until(lambda: claimed(db), timeout=30)
        time.sleep(0.5)  # now inside the 30-second reactions.get
    finally:
        first.kill9()
        sender.close()
    fake.latency_for.clear()
    second = BotProcess.serve(env, log=tmp_path / "b.log")
    try:
        fake.wait_until(lambda: export(db), timeout=40)
        fake.wait_until(lambda: fake.ephemerals(user=REP), timeout=30)
        time.sleep(1.0)
    finally:
        second.stop()
    [rec] = export(db)
    assert rec["votes"] == 1
    assert len(fake.ephemerals(user=REP)) == 1


def confirmations(fake, user: str) -> list[dict]:
    """Capture confirmations, not the "Looks like FB-n" suggestions that follow near-identical captures."""
    return [e for e in fake.ephemerals(user=user) if not e["text"].startswith("Looks like")]


def claimed(db) -> bool:
    with db.read_session() as s:
        return bool(s.scalar(select(func.count()).select_from(Job).where(Job.locked_until.is_not(None))))


def test_acks_stay_fast_when_the_web_api_takes_2_seconds(server, slack, fake, db):
    fake.latency = 2.0
    ts = fake.add_message("C0ACME", "Mobile app logs out on every update", user=CUSTOMER)
    worst = 0.0
    for i in range(5):
        t = time.perf_counter()
        r = slack.reaction("reaction_added", user=f"U0V{i}", channel="C0ACME", ts=ts, reaction="bulb")
        worst = max(worst, time.perf_counter() - t)
        assert r.status_code == 200
        t = time.perf_counter()
        r = slack.command("/feedback", f"Slow API, fast ack #{i}", user=REP)
        worst = max(worst, time.perf_counter() - t)
        assert "FB-" in r.json()["text"]
        t = time.perf_counter()
        assert slack.command("/feedback", "", user=REP).status_code == 200  # opens a modal after the ack
        worst = max(worst, time.perf_counter() - t)
    # Slack's deadline is 3 s; each ack here must not wait for the 2-second Web API.
    assert worst < 1.0, worst
    server.settle(timeout=60)
    fake.wait_until(lambda: any(r["source"] == "reaction" and r["votes"] == 5 for r in export(db)), timeout=30)


def test_rate_limited_and_failing_web_api_calls_are_retried(server, slack, fake, db):
    ts = fake.add_message("C0ACME", "Webhooks retry storm after outage", user=CUSTOMER)
    fake.fail_next("reactions.get", error="ratelimited", status=429, retry_after=1, times=1)
    fake.fail_next("chat.postEphemeral", error="internal_error", status=500, times=2)
    slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bug")
    fake.wait_until(lambda: export(db), timeout=20)
    fake.wait_until(lambda: fake.ephemerals(user=REP), timeout=20)
    assert len(fake.ephemerals(user=REP)) == 1
    assert export(db)[0]["text"] == "Webhooks retry storm after outage"


def test_a_message_captured_twice_by_different_routes_is_one_item(server, slack, fake, db):
    ts = fake.add_message("C0ACME", "Need per-seat pricing in the EU", user=CUSTOMER)
    slack.command("/feedback", "watch", user=REP, channel="C0ACME")
    slack.message(channel="C0ACME", user=CUSTOMER, text="Need per-seat pricing in the EU", ts=ts)
    slack.reaction("reaction_added", user=REP2, channel="C0ACME", ts=ts, reaction="bulb")
    slack.message(channel="C0ACME", user=CUSTOMER, text="Need per-seat pricing in the EU", ts=ts, retry_num=1)
    server.settle()
    fake.wait_until(lambda: export(db) and export(db)[0]["votes"] == 1)
    [rec] = export(db)
    assert rec["votes"] == 1 and rec["source"] == "watch"


def test_a_failed_inbox_write_is_not_acked_so_slack_retries_and_nothing_is_lost(server, slack, fake, db,
                                                                                   monkeypatch):
    from sqlalchemy.exc import OperationalError

    from bot.core.groupcommit import RowInsert

    real = RowInsert.run_batch.__func__  # type: ignore[attr-defined]
    failures = {"left": 2}  # the batch, then the unit replayed alone: the database is really down

    def flaky(cls, session, units):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("INSERT INTO jobs", {}, Exception("database is locked"))
        return real(cls, session, units)

    monkeypatch.setattr(RowInsert, "run_batch", classmethod(flaky))
    ts = fake.add_message("C0ACME", "Dashboards time out at 30 s for big tenants", user=CUSTOMER)
    first = slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bug", event_id="EvFLAKY1")
    assert first.status_code >= 500  # not acked: Slack will retry
    retry = slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bug", event_id="EvFLAKY1",
                           retry_num=1)
    assert retry.status_code == 200
    server.settle()
    fake.wait_until(lambda: export(db), timeout=10)
    [rec] = export(db)
    assert rec["text"].startswith("Dashboards time out") and rec["votes"] == 1
    assert slack.http.get(server.url + "/healthz").status_code == 200
