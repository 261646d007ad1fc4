"""GET /metrics (loopline serve) and `loopline scheduler --metrics-port`: scraped over real HTTP before and
after real work (signed requests in, the fake Slack Web API out), and the right numbers move."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.core.settings import Settings, load_settings
from bot.features.subscriptions import service as sub_svc
from bot.metrics import Metrics
from tests.support.announcements import modal_values, wait
from tests.support.env import ADMIN, BOT_TOKEN, CUSTOMER, PM, REP, REPO, SIGNING_SECRET, RunningServer, export
from tests.support.process import free_port
from tests.support.slack_requests import SlackSender

FEEDBACK = "Exports to CSV drop the 'ARR (€)' column when the account name has a comma — Acme, Inc. & co <!here>"


@pytest.fixture
def settings(fake: Any, db_url: str) -> Settings:
    return load_settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                         slack_api_url=fake.base_url, database_url=db_url, loopline_log_format="text",
                         loopline_workspace_rate=25.0, loopline_embedder="tfidf")


@pytest.fixture
def server(settings: Settings, db: Any) -> Iterator[RunningServer]:
    # No caching: each scrape reads afresh, so a test sees the work it just did.
    srv = RunningServer(settings, metrics=Metrics(db_ttl=0, render_ttl=0))
    yield srv
    srv.stop()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def scrape(http: httpx.Client, url: str, **kw: Any) -> Samples:
    r = http.get(url + "/metrics", **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there are none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_the_numbers_move_when_the_work_happens(server, slack, fake, db):
    http = slack.http
    before = scrape(http, server.url)
    assert value(before, "loopline_database_up") == 1.0 and value(before, "loopline_worker_running") == 1.0

    # A /feedback capture (a command), an event, and two requests refused at the edge.
    r = slack.command("/feedback", FEEDBACK, user=REP, channel="C0SALES")
    assert r.status_code == 200 and "FB-" in r.text
    ts = fake.add_message("C0SALES", "Can the mobile app keep drafts offline? Our field team loses them on the train",
                          user=CUSTOMER)
    assert slack.reaction("reaction_added", user=REP, channel="C0SALES", ts=ts, reaction="bulb").status_code == 200
    assert slack.command("/feedback", "unsigned", sign=False).status_code == 401
    assert slack.post_raw(b"x" * (1024 * 1024 + 1), "application/x-www-form-urlencoded").status_code == 413
    server.settle()

    # An announcement whose first post gets a 429 from Slack.
    with db.session() as s:
        for ch in ("C0SALES", "C0PRODUCT"):
            sub_svc.subscribe(s, team_id="T0001", channel_id=ch, text="exports", by=ADMIN, may_create=True)
    fake.fail_next("chat.postMessage", "ratelimited", retry_after=1, times=1, channel="C0SALES")
    before_views = len(fake.views)
    slack.command("/announce", "", user=ADMIN, channel="C0PRODUCT", channel_name="product")
    fake.wait_until(lambda: len(fake.views) > before_views, 5, "for views.open")
    view = fake.views[-1]["view"]
    slack.view_submission(view, modal_values("CSV exports keep every column",
                                             "Fixed: commas in account names. Thanks <!channel>!", ["exports"]),
                          user=ADMIN)
    wait(lambda: next((a for a in export(db, "announcements") if a["status"] == "sent"), None), 30, "for the fan-out")

    # A digest, built and posted.
    assert slack.command("/digest", "now", user=PM, channel="C0PRODUCT").status_code == 200
    wait(lambda: value(scrape(http, server.url), "loopline_digest_build_seconds_count") > 0, 30, "for the digest")
    server.settle()

    after = scrape(http, server.url)
    # Acks: by kind, with latency; the refused ones by code.
    assert delta(before, after, "loopline_slack_requests_total", kind="command", outcome="acked", code="200") == 3
    assert delta(before, after, "loopline_slack_requests_total", kind="event", outcome="acked", code="200") == 1
    assert delta(before, after, "loopline_slack_requests_total", kind="view", outcome="acked") == 1
    assert delta(before, after, "loopline_slack_requests_total", outcome="rejected", code="401") == 1
    assert delta(before, after, "loopline_slack_requests_total", outcome="rejected", code="413") == 1
    assert delta(before, after, "loopline_slack_ack_seconds_count", kind="command") == 3
    assert delta(before, after, "loopline_slack_ack_seconds_count", kind="event") == 1
    assert delta(before, after, "loopline_slack_ack_seconds_count", kind="unknown") == 0  # refused: not timed
    assert 0 < delta(before, after, "loopline_slack_ack_seconds_sum", kind="command") < 3 * 3.0
    assert delta(before, after, "loopline_slack_ack_seconds_bucket", kind="command", le="3.0") == 3
    # Group commit: every acked write went through a batch.
    assert delta(before, after, "loopline_group_commit_batch_size_count") >= 1
    assert delta(before, after, "loopline_group_commit_batch_size_sum") >= 3
    # Web API calls by method and result, the 429 among them; Bolt's client (views.open) is counted too.
    assert delta(before, after, "loopline_slack_api_calls_total", method="views.open", result="ok") == 1
    assert delta(before, after, "loopline_slack_api_calls_total", method="chat.postMessage", result="ratelimited") == 1
    assert delta(before, after, "loopline_slack_rate_limited_total", method="chat.postMessage") == 1
    assert delta(before, after, "loopline_slack_api_calls_total", method="chat.postMessage", result="ok") >= 2
    # The delivery loop's client has no retry handlers (it puts the row back itself): no in-call retry.
    assert delta(before, after, "loopline_slack_retries_total", method="chat.postMessage") == 0
    # Deliveries: both posted, one put back once for the 429; none open any more.
    assert delta(before, after, "loopline_deliveries_total", status="posted") == 2
    assert delta(before, after, "loopline_deliveries_total", status="rate_limited") == 1
    assert value(after, "loopline_deliveries_open", status="pending") == 0
    # The digest: one build, timed, with its themes counted.
    assert delta(before, after, "loopline_digest_build_seconds_count") == 1
    assert delta(before, after, "loopline_digest_themes_count") == 1
    assert delta(before, after, "loopline_digest_themes_sum") >= 1
    assert value(after, "loopline_jobs_pending") == 0 and value(after, "loopline_jobs_oldest_due_seconds") == 0

    text = http.get(server.url + "/metrics").text
    for secret in (BOT_TOKEN, SIGNING_SECRET, "Acme", "drafts offline", "T0001", REP, ADMIN, "C0SALES"):
        assert secret not in text


def test_in_call_retries_are_counted_by_method_and_reason(server, slack, fake, db):
    before = scrape(slack.http, server.url)
    # The reaction's job fetches the message with the retrying client: its first answer is a 429.
    ts = fake.add_message("C0SALES", "SSO login loops back to the start page on Safari 17", user=CUSTOMER)
    fake.fail_next("*", "ratelimited", retry_after=1, times=1)
    slack.reaction("reaction_added", user=REP, channel="C0SALES", ts=ts, reaction="bug")
    # (the item is stored as soon as the worker sees the reaction; the retried fetch comes after)
    wait(lambda: delta(before, scrape(slack.http, server.url), "loopline_slack_retries_total") >= 1, 20,
         "for the retry")
    server.settle()
    fake.wait_until(lambda: fake.ephemerals(user=REP), 10, "for the confirmation")
    after = scrape(slack.http, server.url)
    assert delta(before, after, "loopline_slack_retries_total", reason="ratelimited") == 1
    assert delta(before, after, "loopline_slack_rate_limited_total") == 1


def test_jobs_pending_and_the_oldest_ones_age(settings, fake, db):
    # No worker: the capture's follow-up jobs stay queued.
    srv = RunningServer(settings, background=False, metrics=Metrics(db_ttl=0, render_ttl=0))
    sender = SlackSender(srv.url, SIGNING_SECRET)
    try:
        ts = fake.add_message("C0SALES", "Bulk edit for tags, please — 300 tickets by hand is painful", user=CUSTOMER)
        sender.reaction("reaction_added", user=REP, channel="C0SALES", ts=ts, reaction="bulb")
        time.sleep(1.2)
        m = scrape(sender.http, srv.url)
        assert value(m, "loopline_jobs_pending") >= 1 and value(m, "loopline_jobs_due") >= 1
        assert value(m, "loopline_jobs_oldest_due_seconds") >= 1.0
        assert value(m, "loopline_worker_running") == 0.0
    finally:
        sender.close()
        srv.stop()


def test_production_caching_serves_a_burst_of_scrapes_from_one_reading(settings, fake, db):
    srv = RunningServer(settings)
    try:
        with httpx.Client(timeout=10) as http:
            t0 = time.monotonic()
            before = value(parse(http.get(srv.url + "/metrics").text), "loopline_metrics_renders_total")
            for _ in range(30):
                last = http.get(srv.url + "/metrics").text
            elapsed = time.monotonic() - t0
        # Each rendering is reused for a second: 31 scrapes, one rendering per second they took at most.
        renders = value(parse(last), "loopline_metrics_renders_total") - before
        assert renders <= 1 + elapsed, (renders, elapsed)
    finally:
        srv.stop()


def test_metrics_token_when_set(settings, fake, db):
    srv = RunningServer(settings.model_copy(update={"loopline_metrics_token": "s3cret-scrape"}))
    try:
        with httpx.Client(timeout=10) as http:
            assert http.get(srv.url + "/metrics").status_code == 401
            assert http.get(srv.url + "/metrics", headers={"authorization": "Bearer nope"}).status_code == 401
            r = http.get(srv.url + "/metrics", headers={"authorization": "Bearer s3cret-scrape"})
            assert r.status_code == 200 and "loopline_slack_requests_total" in r.text
    finally:
        srv.stop()



def test_scheduler_metrics_port(fake, db, db_url):
    port = free_port()
    env = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": fake.base_url, "DATABASE_URL": db_url,
           "LOOPLINE_LOG_FORMAT": "text", "LOOPLINE_EMBEDDER": "tfidf"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "scheduler", "--metrics-host", "127.0.0.1",
                             "--metrics-port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(timeout=5) as http:
            def answered() -> httpx.Response | None:
                try:
                    return http.get(f"http://127.0.0.1:{port}/metrics")
                except httpx.TransportError:
                    assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                    return None

            r = wait(answered, 30, "for the scheduler's metrics port")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            m = parse(r.text)
            assert value(m, "loopline_worker_running") == 1.0 and value(m, "loopline_database_up") == 1.0
            assert ("loopline_jobs_pending", frozenset()) in m
            assert http.get(f"http://127.0.0.1:{port}/nothing").status_code == 404
    finally:
        proc.terminate()
        assert proc.wait(15) == 0


def test_scheduler_without_metrics_port_listens_on_nothing(fake, db, db_url):
    env = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": fake.base_url, "DATABASE_URL": db_url,
           "LOOPLINE_LOG_FORMAT": "text"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "scheduler"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(3)
        assert proc.poll() is None
        listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
        assert f"pid={proc.pid}," not in listening
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.mark.skipif(not os.environ.get("LOOPLINE_TEST_DB", "sqlite").startswith("postgres"),
                    reason="a database server that stops answering (PostgreSQL behind a proxy)")
def test_a_scrape_while_the_database_hangs_answers_at_once(fake, db, db_url):
    from tests.support.faults import TcpProxy

    proxy, url = TcpProxy.before(db_url)
    settings = load_settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                             slack_api_url=fake.base_url, database_url=url, loopline_log_format="text")
    srv = RunningServer(settings, metrics=Metrics(db_ttl=0, render_ttl=0))
    try:
        with httpx.Client(timeout=10) as http:
            assert value(scrape(http, srv.url), "loopline_database_up") == 1.0
            # PostgreSQL stops answering: connections are accepted and never spoken to.
            proxy.stall()
            for _ in range(3):
                t = time.monotonic()
                m = scrape(http, srv.url)
                took = time.monotonic() - t
                assert took < 3.0, took
                assert value(m, "loopline_database_up") == 0.0
                assert value(m, "loopline_worker_running") == 1.0
            # The rest of the server is not held up either.
            t = time.monotonic()
            assert http.get(srv.url + "/slack/events").status_code == 405
            assert time.monotonic() - t < 1.0
    finally:
        proxy.close()
        srv.stop()
