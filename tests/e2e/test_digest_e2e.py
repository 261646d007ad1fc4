"""/digest end to end over real HTTP, the poster's exactly-once across two runtimes, and the CLI."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.core import clock
from bot.core.models import DigestRun, DigestSchedule
from bot.devtools.fakeslack.blockkit import check_message_blocks
from bot.features.digests import schedules as sched_svc
from tests.support.env import PM, REP
from tests.support.seed import PING, WITHDRAWN, seed


@pytest.fixture
def settings(settings):
    # TF-IDF keeps these tests free of the local model's start-up time; the path is the same.
    return settings.model_copy(update={"loopline_embedder": "tfidf"})


def _thread(fake, channel):
    parents = [m for m in fake.bot_messages(channel) if not m.get("thread_ts") or m.get("thread_ts") == m["ts"]]
    return parents


def _posted(db):
    with db.read_session() as s:
        return s.scalar(select(DigestRun.id).where(DigestRun.status == "posted"))


def test_digest_now_posts_parent_thread_replies_and_chart(server, slack, fake, db):
    now = clock.now()
    seed(db, now=now)
    r = slack.command("/digest", "now", user=PM, channel="C0PRODUCT")
    assert r.status_code == 200 and r.json()["response_type"] == "ephemeral"
    assert "digest" in r.json()["text"].lower()
    fake.wait_until(lambda: [f for f in fake.files if f.get("completed")], timeout=30, message="for the chart")
    fake.wait_until(lambda: _posted(db), timeout=10, message="for the run to be marked posted")
    [parent] = _thread(fake, "C0PRODUCT")
    assert "digest" in json.dumps(parent["blocks"]).lower()
    replies = fake.replies("C0PRODUCT", parent["ts"])
    texts = [m for m in replies if m["ts"] != parent["ts"] and not m.get("files")]
    assert len(texts) >= 3  # themes + decisions
    [chart] = fake.files
    assert chart["thread_ts"] == parent["ts"] and chart["content"][:8] == b"\x89PNG\r\n\x1a\n"
    everything = json.dumps([parent, *replies], ensure_ascii=False)
    assert "<!channel>" not in everything and "<!here>" not in everything and "<@U0PM>" not in everything
    assert WITHDRAWN not in everything and PING[:10] in everything.replace("&lt;", "<").replace("&gt;", ">")
    for m in [parent, *texts]:
        assert check_message_blocks(m["blocks"]) == []
    with db.read_session() as s:
        [run] = s.scalars(select(DigestRun)).all()
        assert run.status == "posted" and run.ts == parent["ts"] and run.requested_by == PM
        assert len([x for x in run.reply_ts if not x.startswith("file:")]) == len(texts)
    # App Home shows the latest digest's themes (the hook, called as publish_home calls it).
    from bot.features import HomeData
    from bot.features.digests.jobs import home_themes

    home = HomeData()
    with db.read_session() as s:
        home_themes(s, home, "T0001", PM)
    assert home.themes and home.themes[0] == (run.summary["themes"][0]["title"], run.summary["themes"][0]["count"])


def test_schedule_resolves_time_zone_after_ack_and_answers_privately(server, slack, fake, db):
    r = slack.command("/digest", "weekly mon 09:00 billing, Mobile", user=PM, channel="C0PRODUCT")
    assert "Scheduling" in r.json()["text"]
    [answer] = fake.wait_for_webhook(timeout=10)
    assert "America/New_York" in answer["text"] and "Monday" in answer["text"] and "09:00" in answer["text"]
    assert fake.calls_to("users.info")
    with db.read_session() as s:
        [sched] = s.scalars(select(DigestSchedule)).all()
        assert (sched.cadence, sched.weekday, sched.at_time, sched.timezone, sched.areas) == (
            "weekly", 0, "09:00", "America/New_York", ["billing", "mobile"])
    r = slack.command("/digest", "", user=REP, channel="C0PRODUCT")
    assert "every Monday at 09:00 (America/New_York)" in r.json()["text"]
    r = slack.command("/digest", "weekly someday 9:00", user=REP, channel="C0PRODUCT")
    body = r.json()
    assert body["response_type"] == "ephemeral" and "/digest weekly DAY HH:MM" in body["text"]
    assert "someday" in json.dumps(body["blocks"])
    r = slack.command("/digest", "off", user=PM, channel="C0PRODUCT")
    assert "stopped" in r.json()["text"]
    assert "No digest is scheduled" in slack.command("/digest", "", channel="C0PRODUCT").json()["text"]


def test_two_runtimes_post_each_period_exactly_once(settings, fake, db):
    """Two processes' planners and posters on one database, racing: one parent per period."""
    from bot.features.digests.jobs import run_due
    from bot.runtime import Runtime

    now = clock.now()
    seed(db, now=now)
    with db.session() as s:  # a schedule that took effect two weeks ago: two periods are due
        sched_svc.save_schedule(s, team_id="T0001", channel="C0PRODUCT", cadence="daily", weekday=None,
                                at_time="00:00", timezone="UTC", areas=[], by=PM, now=now - timedelta(days=2))
    rts = [Runtime(settings, migrate=False) for _ in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def go(rt):
        try:
            barrier.wait()
            for _ in range(3):
                with rt.db.session() as s:
                    sched_svc.plan_runs(s, now=clock.now())
                run_due(rt.db, rt.settings, lambda team, rt=rt: rt.slack.for_team(team))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=go, args=(rt,)) for rt in rts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for rt in rts:
        rt.stop()
    assert not errors
    parents = _thread(fake, "C0PRODUCT")
    with db.read_session() as s:
        runs = s.scalars(select(DigestRun)).all()
    assert len(runs) == 2 and all(r.status == "posted" for r in runs)
    assert sorted(p["ts"] for p in parents) == sorted(r.ts for r in runs)
    assert len(fake.files) == 2


def test_resumed_run_continues_the_thread_instead_of_a_second_parent(settings, fake, db):
    from bot.core.slack_client import SlackClients
    from bot.features.digests.jobs import claim_run, process_claimed

    digest_asked_for_now(db)
    clients = SlackClients(settings)
    rid = claim_run(db)
    assert rid and claim_run(db) is None  # leased: a second poster can't take it
    process_claimed(db, settings, clients.for_team, rid)
    with db.read_session() as s:
        run = s.get(DigestRun, rid)
        first_ts, replies = run.ts, list(run.reply_ts)
    assert run.status == "posted"
    texts = [x for x in replies if not x.startswith("file:")]
    assert len(texts) >= 4
    # Pretend the poster died after the parent + 3 replies had landed but only 1 was recorded: the run
    # is back in "posting" with its lease gone, and the replies after the third never reached Slack.
    for ts in texts[3:]:
        fake.delete_message("C0PRODUCT", ts)
    with db.session() as s:
        r = s.get(DigestRun, rid)
        r.status, r.reply_ts, r.locked_until = "posting", replies[:1], None
    before = fake.call_count("chat.postMessage")
    assert claim_run(db) == rid
    process_claimed(db, settings, clients.for_team, rid)
    assert len(_thread(fake, "C0PRODUCT")) == 1  # still one parent
    new = fake.call_count("chat.postMessage") - before
    assert new == len(texts) - 3  # the two unrecorded replies that landed were adopted, not re-posted
    with db.read_session() as s:
        run = s.get(DigestRun, rid)
        assert run.ts == first_ts and run.reply_ts[:3] == texts[:3]
    thread = fake.replies("C0PRODUCT", first_ts)
    posted = sorted(m["ts"] for m in thread if not m.get("files"))
    assert len(posted) == len(texts) and posted[:3] == texts[:3]  # no reply twice


def test_cli_print_and_json(settings, db, capsys, monkeypatch):
    from bot import cli

    seed(db, now=clock.now())
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LOOPLINE_EMBEDDER", "tfidf")
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert cli.main(["digest", "--channel", "C0PRODUCT", "--json", "--team", "T0001"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"] == 43 and data["previous_total"] == 4
    t = data["themes"][0]
    assert {"title", "summary", "count", "trend", "feedback_ids", "quotes", "accounts", "arr"} <= set(t)
    assert set(data["decisions"]) == {"made", "in_review", "overdue", "stale"}
    assert cli.main(["digest", "--channel", "C0PRODUCT", "--print"]) == 0
    out = capsys.readouterr().out
    assert "Feedback digest" in out and "43 items" in out and WITHDRAWN not in out
    since = (clock.now() - timedelta(days=30)).date().isoformat()
    assert cli.main(["digest", "--channel", "C0PRODUCT", "--json", "--since", since]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 47


def digest_asked_for_now(db):
    """The workspace's feedback seeded, and a digest of #product asked for now (what `/digest now` writes)."""
    now = clock.now()
    seed(db, now=now)
    with db.session() as s:
        sched_svc.request_now(s, team_id="T0001", channel="C0PRODUCT", user=PM, now=now)


def _post_and_forget(db, settings, fake, rid, clients):
    """Post the run, then pretend the poster died right after Slack accepted everything."""
    from bot.features.digests.jobs import process_claimed

    process_claimed(db, settings, clients.for_team, rid)
    with db.session() as s:
        r = s.get(DigestRun, rid)
        first_ts, replies = r.ts, list(r.reply_ts)
        assert r.post_started_at is not None
        r.status, r.ts, r.locked_until = "posting", None, None
        r.reply_ts = [x for x in replies if x.startswith("file:")]  # the chart is not the point here
    return first_ts, replies


def test_parent_posted_by_a_crashed_attempt_is_adopted_with_its_replies(settings, fake, db):
    from bot.core.slack_client import SlackClients
    from bot.features.digests.jobs import claim_run, process_claimed

    digest_asked_for_now(db)
    clients = SlackClients(settings)
    rid = claim_run(db)
    first_ts, replies = _post_and_forget(db, settings, fake, rid, clients)
    [parent] = _thread(fake, "C0PRODUCT")
    assert parent["metadata"] == {"event_type": "loopline_digest", "event_payload": {"key": f"{rid}:0"}}
    before = fake.call_count("chat.postMessage")
    assert claim_run(db) == rid
    process_claimed(db, settings, clients.for_team, rid)
    assert fake.call_count("chat.postMessage") == before  # nothing posted twice
    assert len(_thread(fake, "C0PRODUCT")) == 1
    with db.read_session() as s:
        run = s.get(DigestRun, rid)
        assert run.status == "posted" and run.ts == first_ts
        assert sorted(x for x in run.reply_ts if not x.startswith("file:")) == \
            sorted(x for x in replies if not x.startswith("file:"))


def test_parent_post_answered_500_ends_with_one_parent(settings, fake, db):
    from bot.core.slack_client import SlackClients
    from bot.features.digests.jobs import claim_run, process_claimed

    digest_asked_for_now(db)
    clients = SlackClients(settings)
    fake.fail_next("chat.postMessage", status=500, channel="C0PRODUCT")
    rid = claim_run(db)
    process_claimed(db, settings, clients.for_team, rid)  # the 500 comes back to us: retry later
    assert fake.call_count("chat.postMessage") == 1 and _thread(fake, "C0PRODUCT") == []
    with db.session() as s:
        r = s.get(DigestRun, rid)
        assert r.status == "posting" and r.ts is None and "internal_error" in (r.error or "")
        r.locked_until = None  # skip the backoff
    assert claim_run(db) == rid
    process_claimed(db, settings, clients.for_team, rid)
    assert len(_thread(fake, "C0PRODUCT")) == 1
    history = [c for c in fake.calls_to("conversations.history") if c.channel == "C0PRODUCT"]
    assert history and history[0].params.get("include_all_metadata") in ("true", "1", True, 1)
    with db.read_session() as s:
        assert s.get(DigestRun, rid).status == "posted"
