"""`loopline serve --worker process` (the default on PostgreSQL): the worker and scheduler run in a child
process at lower CPU priority, woken by the edge through a pipe, restarted when it dies, gone when the
server goes, and counted in the server's own /metrics (bot/companion.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bot.core.models import Job
from tests.support.env import BOT_TOKEN, CUSTOMER, REP, SIGNING_SECRET, export
from tests.support.process import BotProcess, bot_env
from tests.support.slack_requests import SlackSender

TEXTS = ["SCIM deprovisioning leaves \"ghost\" seats on the invoice — Acme's admin <@U0CUST> noticed",
         "CSV import chokes on a BOM & silently drops row 1 🙃 (again, see last week)"]


@pytest.fixture
def web(fake, db_url, db, tmp_path):
    env = bot_env(fake, db_url, SIGNING_SECRET, BOT_TOKEN)
    srv = BotProcess.serve(env, log=tmp_path / "serve.log", extra=("--worker", "process"))
    yield srv
    srv.stop()


def health(web: BotProcess) -> httpx.Response:
    return httpx.get(web.url + "/healthz", timeout=5)


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for init to reap it counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def claimed(db) -> bool:
    with db.read_session() as s:
        return bool(s.scalar(select(func.count()).select_from(Job).where(Job.locked_until.is_not(None))))


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def capture(web: BotProcess, fake, text: str) -> None:
    ts = fake.add_message("C0ACME", text, user=CUSTOMER)
    sender = SlackSender(web.url, SIGNING_SECRET)
    try:
        assert sender.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bulb").status_code == 200
    finally:
        sender.close()


def test_the_worker_runs_in_its_own_lower_priority_process(web, fake, db):
    worker = health(web).json()["worker"]
    assert worker["running"] and worker["process"] not in (None, web.proc.pid)
    assert niceness(worker["process"]) == niceness(web.proc.pid) + 10

    capture(web, fake, TEXTS[0])
    fake.wait_until(lambda: [r for r in export(db) if r["text"] == TEXTS[0]], timeout=40)
    fake.wait_until(lambda: fake.ephemerals(user=REP), timeout=30)  # the capturer is told, by the child

    # One exposition: the child's Web API calls (it fetched the reacted message) are in the server's
    # /metrics, with the worker counted as running and one process's own figures, not two.
    samples = [s for f in text_string_to_metric_families(httpx.get(web.url + "/metrics", timeout=5).text)
               for s in f.samples]
    fetched = sum(s.value for s in samples if s.name == "loopline_slack_api_calls_total"
                  and s.labels.get("method") in ("reactions.get", "conversations.history", "conversations.replies"))
    assert fetched >= 1
    assert [s.value for s in samples if s.name == "loopline_worker_running"] == [1.0]
    assert len([s for s in samples if s.name == "process_start_time_seconds"]) == 1


def test_a_worker_process_that_dies_is_restarted_and_the_work_goes_on(web, fake, db):
    first = health(web).json()["worker"]["process"]
    os.kill(first, signal.SIGKILL)
    # Meanwhile /healthz says so (orchestrators see it), and the edge still acks and keeps what it's sent.
    down = fake.wait_until(lambda: (r := health(web)).status_code == 503 and r.json(), timeout=5)
    assert "worker process has stopped" in down["reason"]
    capture(web, fake, TEXTS[1])
    back = fake.wait_until(lambda: (w := health(web).json()["worker"])["running"] and w, timeout=30)
    assert back["process"] != first and back["restarts"] == 1
    fake.wait_until(lambda: [r for r in export(db) if r["text"] == TEXTS[1]], timeout=40)


def test_the_worker_process_dies_with_its_server_even_inside_a_job(web, fake, db):
    """`kill -9` of the server takes its worker with it at once, as it took its worker threads: the job in
    hand is left to its lease (the next process finishes it, tests/e2e/test_durability.py), not finished by
    an orphan that outlives its server."""
    fake.latency_for["reactions.get"] = 30.0
    fake.latency_for["conversations.history"] = 30.0
    fake.latency_for["conversations.replies"] = 30.0
    child = health(web).json()["worker"]["process"]
    capture(web, fake, TEXTS[0])
    fake.wait_until(lambda: claimed(db), timeout=40)
    time.sleep(0.5)  # now inside the 30-second call
    web.kill9()
    deadline = time.monotonic() + 5  # the graceful way out would wait up to 10 s for the call
    while not gone(child):
        assert time.monotonic() < deadline, "the worker process outlived its server"
        time.sleep(0.05)
