"""Acked means stored, under real faults, end to end.

Each test drives the real server over HTTP with signed requests while a real fault happens underneath:
a commit that fails for one request of a batch (a deferred foreign key), a writer stuck behind a lock,
a full disk (`loopline serve` with its file-size limit lowered), PostgreSQL dropping every connection
and refusing new ones. Afterwards every request that was acknowledged is in the database, every one
that was not got a 5xx (events; Slack retries them) or an error answer (slash commands, which Slack
does not retry: the person sees it failed), and the server goes on serving.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import resource
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from bot.core import clock
from bot.core.common import job_row
from bot.core.db import Database
from bot.core.models import Feedback, Job
from bot.core.settings import load_settings
from tests.support.env import BOT_TOKEN, CUSTOMER, REP, REP2, SIGNING_SECRET, RunningServer, export
from tests.support.faults import TcpProxy, commit_time_fk_violation, write_lock_held
from tests.support.process import BotProcess, bot_env
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
    if r.status_code != 200 or not r.content:
        return None
    m = FB_ID.search(r.json().get("text", ""))
    return int(m.group(1)) if m else None


def acked(kind: str, r: httpx.Response) -> bool:
    """Acknowledged as done: an event answered 200, a /feedback answered with the id it was given."""
    return r.status_code == 200 if kind == "event" else acked_id(r) is not None


def refused(r: httpx.Response) -> bool:
    """Not acknowledged as done: a 5xx (Slack retries events) or, for a command, an error answer."""
    if r.status_code >= 500:
        return True
    return r.status_code == 200 and bool(r.content) and "went wrong" in r.json().get("text", "") \
        and acked_id(r) is None


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
            assert body["writer"]["busy_s"] >= 0.5  # rounded in the JSON
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



def _file_size_limit(limit: int) -> Any:
    def apply() -> None:  # runs in the child between fork and exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), not the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


@pytest.mark.skipif(os.environ.get("LOOPLINE_TEST_DB", "sqlite").startswith("postgres"),
                    reason="the file-size limit applies to a SQLite file; the shared PostgreSQL's disk is not ours")
def test_a_full_disk_refuses_requests_instead_of_losing_them_and_writes_resume(fake, tmp_path):
    path = tmp_path / "full.db"
    url = f"sqlite:///{path}"
    migrated = Database(url)
    migrated.upgrade()
    migrated.dispose()  # checkpoints the write-ahead log into the database file
    # Every file `loopline serve` writes may grow to this size: the write-ahead log soon can't.
    limit = path.stat().st_size + 256 * 1024
    env = bot_env(fake, url, SIGNING_SECRET, BOT_TOKEN, LOOPLINE_JOB_LEASE_SECONDS="3")
    proc = BotProcess.serve(env, log=tmp_path / "serve.log", preexec_fn=_file_size_limit(limit))
    sender = SlackSender(proc.url, SIGNING_SECRET)
    sent: list[tuple[str, str, httpx.Response]] = []  # (kind, event id or text, answer)

    def send(i: int) -> httpx.Response:
        if i % 3:
            ts = fake.add_message("C0ACME", f"{MESSAGES[i % len(MESSAGES)]} #{i}", user=CUSTOMER)
            eid = f"EvDISK{i:04d}"
            r = sender.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bug", event_id=eid)
            sent.append(("event", eid, r))
        else:
            text = f"Disk-full capture #{i}: “SAML” & <SCIM> please 🙏"
            r = sender.command("/feedback", text, user=REP2)
            sent.append(("command", text, r))
        return r

    try:
        i = 0
        while not any(refused(r) for _, _, r in sent):  # until the disk is full
            assert i < 600, "the file-size limit was never reached"
            send(i)
            i += 1
        for _ in range(10):  # still full: more requests, none of which may be acked and lost
            send(i)
            i += 1
        r = fake.wait_until(lambda: (h := healthz(sender, proc.url)).status_code == 503 and h, timeout=15)
        assert "refuses writes" in r.json()["reason"], r.json()
        assert proc.proc.poll() is None

        # Space comes back (the limit is lifted): writes resume without a restart.
        resource.prlimit(proc.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        cleared = time.monotonic()
        fake.wait_until(lambda: healthz(sender, proc.url).status_code == 200, timeout=15)
        print(f"writer healthy again {time.monotonic() - cleared:.2f} s after the disk had room")
        for k in range(6):
            send(i + k)
        assert all(acked(kind, r) for kind, _, r in sent[-6:])
        acked_events = {eid for kind, eid, r in sent if kind == "event" and acked(kind, r)}
        db = Database(url)
        fake.wait_until(lambda: {f"ev:{e}" for e in acked_events} <= inbox_keys(db), timeout=5)
        fake.wait_until(lambda: len([x for x in export(db) if x["source"] == "reaction"]) >= len(acked_events),
                        timeout=60)
    finally:
        sender.close()
        proc.stop()
    # Every answer was either an acknowledgement of something now stored, or a refusal.
    assert all(acked(kind, r) or refused(r) for kind, _, r in sent), [(k, r.status_code) for k, _, r in sent]
    ids = {acked_id(r): text for kind, text, r in sent if kind == "command" and acked(kind, r)}
    stored = stored_texts(db)
    assert {i: stored.get(i) for i in ids} == ids
    assert any(refused(r) for _, _, r in sent) and len(ids) >= 3
    full_at = next(n for n, (_, _, r) in enumerate(sent) if refused(r))
    assert full_at >= 6, "some requests were stored before the disk filled up"
    db.dispose()


class Load:
    """Signed requests from a few threads until stopped: reactions on distinct messages and /feedback."""

    def __init__(self, fake: Any, url: str, threads: int = 4):
        self.fake = fake
        self.sent: list[tuple[str, str, httpx.Response, float]] = []
        self.errors: list[Exception] = []
        self._stop = threading.Event()
        self._n = itertools.count()
        self._senders = [SlackSender(url, SIGNING_SECRET) for _ in range(threads)]
        self._threads = [threading.Thread(target=self._run, args=(s,), daemon=True) for s in self._senders]
        for t in self._threads:
            t.start()

    def _run(self, sender: SlackSender) -> None:
        while not self._stop.is_set():
            i = next(self._n)
            try:
                if i % 3:
                    ts = self.fake.add_message("C0ACME", f"{MESSAGES[i % len(MESSAGES)]} ({i})", user=CUSTOMER)
                    eid = f"EvPG{i:05d}"
                    r = sender.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="memo",
                                        event_id=eid)
                    self.sent.append(("event", eid, r, time.monotonic()))
                else:
                    text = f"Restart-proof capture #{i} — “quotes” & <angle> 🚀"
                    r = sender.command("/feedback", text, user=REP2)
                    self.sent.append(("command", text, r, time.monotonic()))
            except httpx.HTTPError as e:  # the server must answer every request, fault or not
                self.errors.append(e)

    def acked_since(self, t: float) -> int:
        return sum(1 for kind, _, r, at in list(self.sent) if at >= t and acked(kind, r))

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        for s in self._senders:
            s.close()


@pytest.mark.skipif(not os.environ.get("LOOPLINE_TEST_DB", "sqlite").startswith("postgres"),
                    reason="PostgreSQL connections dropped under load")
def test_postgresql_dropping_every_connection_under_load_loses_no_acked_request(fake, db, db_url):
    proxy, url = TcpProxy.before(db_url)
    settings = load_settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                             slack_api_url=fake.base_url, database_url=url, loopline_log_format="text",
                             loopline_job_lease_seconds=3)
    server = RunningServer(settings)
    probe = SlackSender(server.url, SIGNING_SECRET)
    load = Load(fake, server.url)
    try:
        fake.wait_until(lambda: load.acked_since(0) >= 10, timeout=20)
        # Every backend of this test's database is terminated, three times over, while requests flow.
        for _ in range(3):
            t = time.monotonic()
            with db.engine.connect() as c:
                killed = c.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
            assert killed
            fake.wait_until(lambda t=t: load.acked_since(t) >= 5, timeout=20)
        # Then PostgreSQL is gone for three seconds: connections reset, new ones refused.
        proxy.cut()
        down = time.monotonic()
        r = fake.wait_until(lambda: (h := healthz(probe, server.url)).status_code == 503 and h, timeout=10)
        assert not r.json()["ok"]
        fake.wait_until(lambda: time.monotonic() - down >= 3, timeout=10)
        refused_while_down = [s for s in list(load.sent) if s[3] > down and refused(s[2])]
        proxy.listen()
        back = time.monotonic()
        fake.wait_until(lambda: load.acked_since(back) >= 1, timeout=20)
        first_ack = min(at for kind, _, r, at in list(load.sent) if at >= back and acked(kind, r)) - back
        fake.wait_until(lambda: healthz(probe, server.url).status_code == 200, timeout=20)
        healthy = time.monotonic() - back
        print(f"after PostgreSQL came back: first acked write {first_ack:.2f} s, /healthz 200 {healthy:.2f} s")
        fake.wait_until(lambda: load.acked_since(back) >= 10, timeout=20)
    finally:
        load.stop()
    try:
        assert not load.errors, load.errors[:3]
        assert refused_while_down  # requests did arrive while the database was gone, and were refused
        assert all(acked(kind, r) or refused(r) for kind, _, r, _ in load.sent)
        acked_events = {eid for kind, eid, r, _ in load.sent if kind == "event" and acked(kind, r)}
        assert {f"ev:{e}" for e in acked_events} <= inbox_keys(db)
        ids = {acked_id(r): text for kind, text, r, _ in load.sent if kind == "command" and acked(kind, r)}
        stored = stored_texts(db)
        assert {i: stored.get(i) for i in ids} == ids
        # The worker finishes every acked reaction, the ones it was holding when its connections died too.
        fake.wait_until(lambda: len([x for x in export(db) if x["source"] == "reaction"]) >= len(acked_events),
                        timeout=90)
        assert healthz(probe, server.url).status_code == 200
    finally:
        probe.close()
        server.stop()
        proxy.close()
