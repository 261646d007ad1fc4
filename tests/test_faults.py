"""Acked means stored, under real faults, end to end.

Each test drives the real server over HTTP with signed requests while a real fault happens underneath:
a commit that fails for one request of a batch (a deferred foreign key), a writer stuck behind a lock,
a full disk (`loopline serve` with its file-size limit lowered), PostgreSQL dropping every connection
and refusing new ones. Afterwards every request that was acknowledged is in the database, every one
that was not got a 5xx (events; Slack retries them) or an error answer (slash commands, which Slack
does not retry: the person sees it failed), and the server goes on serving.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot import clock
from bot.models import Feedback, Job
from bot.services.common import job_row
from tests.conftest import CUSTOMER, REP, REP2, export
from tests.support.faults import commit_time_fk_violation, write_lock_held
from tests.support.slack_requests import SlackSender

MESSAGES = [
    "SSO via Okta drops sessions after 10 min — <!channel> blocking renewal 😬",
    "Export to CSV times out for >10k rows & the spinner never stops",
    "Dark mode pls; our NOC team works nights (see <@U0CUST>)",
    "Webhook retries lose the \"event\" field & the signature header",
]
FB_ID = re.compile(r"FB-(\d+)")


def healthz(sender: SlackSender, url: str) -> httpx.Response:
    return sender.http.get(url + "/healthz")


def acked_id(r: httpx.Response) -> int | None:
    """The FB id a /feedback answer promised, or None when it did not promise one."""
    if r.status_code != 200:
        return None
    m = FB_ID.search(r.json().get("text", ""))
    return int(m.group(1)) if m else None


def refused(r: httpx.Response) -> bool:
    """Not acknowledged as done: a 5xx (Slack retries events) or, for a command, an error answer."""
    if r.status_code >= 500:
        return True
    return r.status_code == 200 and "went wrong" in r.json().get("text", "") and acked_id(r) is None


def inbox_keys(db: Any) -> set[str]:
    with db.read_session() as s:
        return set(s.scalars(select(Job.key)))


def stored_texts(db: Any) -> dict[int, str]:
    with db.read_session() as s:
        return {f.id: f.text for f in s.scalars(select(Feedback))}


def test_a_commit_that_fails_for_one_request_of_a_batch_fails_that_request_only(server, slack, fake, db):
    stamps = [fake.add_message("C0ACME", t, user=CUSTOMER) for t in MESSAGES]
    slack.http.timeout = httpx.Timeout(15)  # a dead writer used to hang every request: fail, don't hang
    writer = server.rt.writer
    commands = ["Need audit logs exported to S3 — weekly & <b>signed</b>", "Bulk-edit seats from CSV 🙏"]
    with commit_time_fk_violation(db, job_key_like="ev:EvPOISON%", feedback_text_like="%☠%"), \
            ThreadPoolExecutor(8) as pool:
        with write_lock_held(db):
            # The first request takes the writer and waits on the lock; the others queue behind it and
            # go out together in the next commit, poisoned ones included.
            first = pool.submit(slack.reaction, "reaction_added", user=REP, channel="C0ACME", ts=stamps[0],
                                reaction="bug", event_id="EvGOOD0")
            fake.wait_until(lambda: writer.health().busy_s is not None, timeout=10)
            good = [pool.submit(slack.reaction, "reaction_added", user=REP, channel="C0ACME", ts=ts,
                                reaction="bulb", event_id=f"EvGOOD{i}") for i, ts in enumerate(stamps[1:], 1)]
            bad_event = pool.submit(slack.reaction, "reaction_added", user=REP2, channel="C0ACME", ts=stamps[0],
                                    reaction="memo", event_id="EvPOISON1")
            cmds = [pool.submit(slack.command, "/feedback", t, user=REP2) for t in commands]
            bad_cmd = pool.submit(slack.command, "/feedback", "Poisoned ☠ capture: must not be promised", user=REP)
            fake.wait_until(lambda: writer.health().queued >= len(stamps) + len(commands) + 1, timeout=10)
        assert first.result().status_code == 200
        assert [f.result().status_code for f in good] == [200] * len(good)
        assert bad_event.result().status_code >= 500  # not acked: Slack will retry it
        ids = [acked_id(f.result()) for f in cmds]
        assert all(ids), [f.result().text for f in cmds]
        assert refused(bad_cmd.result()), bad_cmd.result().text  # told it failed, never "Captured as FB-n"

        # The server goes on serving, and one bad request does not make it unhealthy.
        later = slack.command("/feedback", "Still here after the failed commit? ✅", user=REP)
        assert acked_id(later)
        assert healthz(slack, server.url).status_code == 200
    stored = stored_texts(db)
    assert [stored.get(i) for i in ids] == commands  # every promised id holds its own text
    assert not any("☠" in t for t in stored.values())
    assert {f"ev:EvGOOD{i}" for i in range(len(stamps))} <= inbox_keys(db)
    assert "ev:EvPOISON1" not in inbox_keys(db)

    # Slack's retry of the refused event is stored once the fault is gone.
    retry = slack.reaction("reaction_added", user=REP2, channel="C0ACME", ts=stamps[0], reaction="memo",
                           event_id="EvPOISON1", retry_num=1)
    assert retry.status_code == 200
    server.settle()
    fake.wait_until(lambda: len([r for r in export(db) if r["source"] == "reaction"]) == len(stamps), timeout=20)
    reactions = {r["text"]: r for r in export(db) if r["source"] == "reaction"}
    assert set(reactions) == set(MESSAGES)
    assert reactions[MESSAGES[0]]["votes"] == 2  # REP's capture and REP2's retried vote


def test_healthz_is_503_while_the_writer_makes_no_progress_and_200_when_it_resumes(server, slack, fake, db):
    ts = fake.add_message("C0ACME", "Usage report shows last month's seats ¯\\_(ツ)_/¯", user=CUSTOMER)
    server.rt.writer.stall_after = 0.5
    with ThreadPoolExecutor(1) as pool:
        with write_lock_held(db):
            waiting = pool.submit(slack.reaction, "reaction_added", user=REP, channel="C0ACME", ts=ts,
                                  reaction="bug")
            r = fake.wait_until(lambda: (h := healthz(slack, server.url)).status_code == 503 and h, timeout=10)
            body = r.json()
            assert body["ok"] is False and "no progress" in body["reason"]
            assert body["writer"]["busy_s"] > 0.5
        assert waiting.result().status_code == 200  # acked only now, once it is stored
    fake.wait_until(lambda: healthz(slack, server.url).status_code == 200, timeout=10)


def test_healthz_shows_the_backlog_of_jobs(server, slack, fake, db):
    now = clock.now()
    # A replica that died holding leases: its jobs are due but nobody may take them for an hour yet.
    rows = [job_row(key=f"stuck:{i}", kind="notify.dm", team_id="T0001", payload={"user": REP, "text": "hi"})
            for i in range(3)]
    for row, age in zip(rows, (90, 30, 5), strict=True):
        row.update(run_after=now - timedelta(seconds=age), locked_until=now + timedelta(hours=1),
                   locked_by="gone:1", attempts=1)
    later = job_row(key="retry:1", kind="notify.dm", team_id="T0001", payload={"user": REP, "text": "hi"},
                    delay=600)
    later.update(attempts=3, error="service_unavailable")
    with db.session() as s:
        s.execute(Job.__table__.insert(), [*rows, later])
    r = healthz(slack, server.url)
    assert r.status_code == 200
    jobs = r.json()["jobs"]
    assert jobs["pending"] == 4 and jobs["due"] == 3 and jobs["retrying"] == 1, jobs
    assert 88 <= jobs["oldest_due_s"] < 200, jobs
    json.dumps(r.json())  # plain JSON all the way down

