"""Subscriptions and announcements end to end: signed HTTP in, fake Web API out, export checked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.core import clock
from bot.core.db import Database
from bot.core.settings import Settings, load_settings
from bot.features.announcements import service as an_svc
from bot.features.subscriptions import service as sub_svc
from tests.conftest import ADMIN, BOT_TOKEN, PM, REP, REP2, REPO, SIGNING_SECRET, RunningServer, export
from tests.support.process import free_port
from tests.support.slack_requests import SlackSender, text_value

TEAM = "T0001"

BODY = ("Starting Monday, invoices over $10k need a PO number & the CSV export adds a `po_number` column. "
        "Ping <!channel> if your customer relies on the old <format> — 🧾 thanks! cc <@U0CUST>")


@pytest.fixture
def settings(fake: Any, db_url: str) -> Settings:
    # Faster pacing than production so the suite stays short; the fake still enforces 1/s per channel.
    return load_settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                         slack_api_url=fake.base_url, database_url=db_url, loopline_log_format="text",
                         loopline_workspace_rate=25.0, loopline_announcers="U0PM")


def wait(cond: Any, timeout: float = 15.0, msg: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting {msg}")


def record(db: Database, n: int = -1) -> dict[str, Any]:
    return export(db, "announcements")[n]


def wait_status(db: Database, status: str, timeout: float = 20.0) -> dict[str, Any]:
    return wait(lambda: next((r for r in export(db, "announcements") if r["status"] == status), None), timeout,
                f"for an announcement {status}")


def copies(fake: Any, channel: str) -> list[dict[str, Any]]:
    return [m for m in fake.bot_messages(channel)
            if (m.get("metadata") or {}).get("event_type") == "loopline_announcement"]


def seed_subscriptions(db: Database, plan: dict[str, str]) -> None:
    with db.session() as s:
        for channel, areas in plan.items():
            sub_svc.subscribe(s, team_id=TEAM, channel_id=channel, text=areas, by=ADMIN, may_create=True)


def open_modal(slack: SlackSender, fake: Any, user: str = ADMIN) -> dict[str, Any]:
    before = len(fake.views)
    slack.command("/announce", "", user=user, channel="C0PRODUCT", channel_name="product")
    fake.wait_until(lambda: len(fake.views) > before, 5, "for views.open")
    return fake.views[-1]["view"]


def modal_values(title: str, body: str, areas: list[str], send_at: int | None = None,
                 decisions: str | None = None) -> dict[str, Any]:
    return {
        "an_title": text_value(title), "an_body": text_value(body),
        "an_areas": {"value": {"type": "multi_static_select",
                               "selected_options": [{"value": a, "text": {"type": "plain_text", "text": a}}
                                                    for a in areas]}},
        "an_send_at": {"value": {"type": "datetimepicker", "selected_date_time": send_at}},
        "an_decisions": text_value(decisions),
    }


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}


# --- subscriptions -----------------------------------------------------------------------------------------


def test_subscribe_joins_lists_refuses_unknown_and_explains_private(server, slack, fake, db):
    fake.add_channel("C0NEWS", "launch-news", bot_member=False, members=[REP, PM])
    slack.command("/subscribe", "Billing,   Mobile  App ; billing", user=ADMIN, channel="C0NEWS",
                  response_url=fake.response_url("s1"))
    server.settle()
    [answer] = fake.wait_for_webhook("s1")
    assert "Billing" in json.dumps(answer) and "Mobile App" in json.dumps(answer)
    assert fake.calls_to("conversations.join", channel="C0NEWS")
    assert "UBOT" in fake.channel("C0NEWS")["members"]
    r = slack.command("/subscribe", "", user=REP, channel="C0NEWS")
    assert r.json()["response_type"] == "ephemeral" and "Billing, Mobile App" in r.json()["text"]

    # Someone who isn't an admin or announcer can't invent areas; they are told the known ones.
    slack.command("/subscribe", "Quantum <b>", user=REP, channel="C0SALES", response_url=fake.response_url("s2"))
    server.settle()
    text = json.dumps(fake.wait_for_webhook("s2")[-1])
    assert "Quantum &lt;b&gt;" in text and "Known areas: Billing, Mobile App" in text
    with db.read_session() as s:
        assert [a.name for a in sub_svc.known_areas(s, team_id=TEAM)] == ["billing", "mobile app"]
        assert sub_svc.channel_subscriptions(s, team_id=TEAM, channel_id="C0SALES") == []
    # ...but they can subscribe to a known one (case and spaces don't matter).
    slack.command("/subscribe", " BILLING ", user=REP, channel="C0SALES", response_url=fake.response_url("s3"))
    server.settle()
    assert "Subscribed" in json.dumps(fake.wait_for_webhook("s3")[-1])

    # A private channel the bot isn't in: explained privately, nothing recorded.
    slack.command("/subscribe", "billing", user=REP, channel="G0SECRET", response_url=fake.response_url("s4"))
    server.settle()
    assert "/invite @Loopline" in json.dumps(fake.wait_for_webhook("s4")[-1])
    with db.read_session() as s:
        assert sub_svc.channel_subscriptions(s, team_id=TEAM, channel_id="G0SECRET") == []

    r = slack.command("/unsubscribe", "mobile app, nope", user=REP, channel="C0NEWS")
    assert "Unsubscribed this channel from Mobile App" in r.json()["text"] and "nope" in r.json()["text"]
    with db.read_session() as s:
        assert sub_svc.channel_subscriptions(s, team_id=TEAM, channel_id="C0NEWS") == ["Billing"]


# --- permission and modal --------------------------------------------------------------------------------


def test_announce_is_refused_privately_to_non_admins(server, slack, fake, db):
    seed_subscriptions(db, {"C0SALES": "billing"})
    r = slack.command("/announce", "", user=REP, response_url=fake.response_url("no"))
    assert r.status_code == 200
    [refusal] = fake.wait_for_webhook("no")
    assert refusal["response_type"] == "ephemeral"
    assert "Only workspace admins and owners" in refusal["text"] and "<@U0PM>" in refusal["text"]
    assert fake.views == []
    # An announcer from LOOPLINE_ANNOUNCERS (not an admin) gets the modal.
    view = open_modal(slack, fake, user=PM)
    labels = [b["label"]["text"] for b in view["blocks"] if b["type"] == "input"]
    assert labels == ["Title", "Message", "Product areas", "Send at", "Decisions shipped"]
    [picker] = [b for b in view["blocks"] if b.get("block_id") == "an_send_at"]
    assert picker["optional"] and picker["element"]["type"] == "datetimepicker"
    # Someone else submitting a view opened for PM is refused.
    r = slack.view_submission(view, modal_values("x", "y", ["billing"]), user=REP2)
    assert r.json()["response_action"] == "errors"
    assert export(db, "announcements") == []


def test_modal_validation_errors_go_back_into_the_modal(server, slack, fake, db):
    seed_subscriptions(db, {"C0SALES": "billing"})
    view = open_modal(slack, fake)
    past = int(clock.now().timestamp()) - 3600
    r = slack.view_submission(view, modal_values("  ", BODY, [], send_at=past, decisions="D-3, banana"), user=ADMIN)
    errors = r.json()["errors"]
    assert set(errors) == {"an_title", "an_areas", "an_send_at", "an_decisions"}
    assert "past" in errors["an_send_at"] and "banana" in errors["an_decisions"]
    assert export(db, "announcements") == []


# --- delivery, ack, edit, retract -------------------------------------------------------------------------


def test_announcement_reaches_each_subscribed_channel_once_then_edit_and_retract(server, slack, fake, db):
    seed_subscriptions(db, {"C0SALES": "Billing", "C0PRODUCT": "billing, mobile", "C0ACME": "mobile"})
    from bot.core.models import Decision
    with db.session() as s:  # the decisions this announcement ships (validated by the decisions feature)
        s.add_all([Decision(id=3, team_id=TEAM, title="PO numbers"), Decision(id=7, team_id=TEAM, title="CSV")])
    view = open_modal(slack, fake)
    values = modal_values("New invoice rules & PO numbers <soon>", BODY, ["billing"], decisions="D-3, d7")
    r = slack.view_submission(view, values, user=ADMIN, view_id="VANN1")
    assert r.status_code == 200 and r.text == ""
    slack.view_submission(view, values, user=ADMIN, view_id="VANN1")  # a double click: still one announcement
    rec = wait_status(db, "sent")
    assert rec["id"].startswith("AN-") and rec["areas"] == ["billing"] and rec["author"] == ADMIN
    assert rec["decision_ids"] == [3, 7]
    assert sorted(d["channel"] for d in rec["deliveries"]) == ["C0PRODUCT", "C0SALES"]
    assert all(d["status"] == "sent" and d["ts"] for d in rec["deliveries"])
    for ch in ("C0SALES", "C0PRODUCT"):
        [copy] = copies(fake, ch)
        assert copy["metadata"]["event_payload"]["announcement_id"] == int(rec["id"][3:])
        dumped = json.dumps(copy["blocks"])
        assert "<!channel>" not in dumped and "&lt;!channel&gt;" in dumped and "<@U0CUST>" not in dumped
        assert "announce_ack" in dumped
    assert copies(fake, "C0ACME") == []
    assert len(export(db, "announcements")) == 1

    # The author was told privately, with the buttons; then a summary once everything went out.
    server.settle()
    dms = fake.wait_until(lambda: len(fake.dms(ADMIN)) >= 2 and fake.dms(ADMIN))
    confirm = next(m for m in dms if "on its way" in json.dumps(m["blocks"]))
    assert {"announce_edit", "announce_retract"} <= set(buttons(confirm["blocks"]))
    assert "announce_cancel" not in buttons(confirm["blocks"])
    assert any("reached all 2 channels" in json.dumps(m["blocks"]) for m in dms)

    # "Got it": once per person, however often they click.
    aid = rec["id"][3:]
    [sales_copy] = copies(fake, "C0SALES")
    for _ in range(2):
        slack.block_action(user=REP, action_id="announce_ack", value=aid, channel="C0SALES",
                           message_ts=sales_copy["ts"])
    slack.block_action(user=REP2, action_id="announce_ack", value=aid, channel="C0SALES", message_ts=sales_copy["ts"])
    with db.read_session() as s:
        assert an_svc.ack_counts(s, int(aid)) == {"C0SALES": 2}

    # Edit: a prefilled modal; every copy is updated and marked edited.
    n_views = len(fake.views)
    slack.block_action(user=ADMIN, action_id="announce_edit", value=aid, channel=fake.dm_channel(ADMIN),
                       message_ts=confirm["ts"])
    fake.wait_until(lambda: len(fake.views) > n_views)
    edit_view = fake.views[-1]["view"]
    assert edit_view["blocks"][0]["element"]["initial_value"] == "New invoice rules & PO numbers <soon>"
    slack.view_submission(edit_view, {"an_title": text_value("New invoice rules (PO numbers from 1 March)"),
                                      "an_body": text_value(BODY + " Update: starts 1 March.")}, user=ADMIN)
    fake.wait_until(lambda: len(fake.calls_to("chat.update")) >= 2, 10)
    for ch in ("C0SALES", "C0PRODUCT"):
        [copy] = copies(fake, ch)
        dumped = json.dumps(copy["blocks"])
        assert "1 March" in dumped and "(edited)" in dumped
    wait(lambda: record(db)["status"] == "sent")

    # Retract: every copy is replaced by a short notice.
    slack.block_action(user=ADMIN, action_id="announce_retract", value=aid, channel=fake.dm_channel(ADMIN),
                       message_ts=confirm["ts"])
    rec = wait(lambda: (r := record(db))["status"] == "retracted"
               and all(d["status"] == "retracted" for d in r["deliveries"]) and r)
    for ch in ("C0SALES", "C0PRODUCT"):
        [copy] = copies(fake, ch)
        assert ":no_entry_sign: Retracted by its author" in copy["text"]
        assert "<@" not in json.dumps(copy.get("blocks"))  # a copy never pings anyone
    assert copies(fake, "C0ACME") == []
    assert Counter(c.params["channel"] for c in fake.calls_to("chat.postMessage")
                   if (c.params.get("metadata") or {}).get("event_type") == "loopline_announcement") \
        == {"C0SALES": 1, "C0PRODUCT": 1}


def test_scheduled_goes_out_at_its_time_and_cancel_sends_nothing(server, slack, fake, db):
    seed_subscriptions(db, {"C0SALES": "billing", "C0PRODUCT": "billing"})
    at = int(clock.now().timestamp()) + 3
    slack.view_submission(open_modal(slack, fake), modal_values("Scheduled", BODY, ["billing"], send_at=at), user=ADMIN)
    later = int(clock.now().timestamp()) + 3600
    slack.view_submission(open_modal(slack, fake), modal_values("Never", "x", ["billing"], send_at=later), user=ADMIN)
    recs = export(db, "announcements")
    assert [r["status"] for r in recs] == ["scheduled", "scheduled"]
    time.sleep(1.5)
    assert copies(fake, "C0SALES") == []
    wait(lambda: len(copies(fake, "C0SALES")) == 1 and len(copies(fake, "C0PRODUCT")) == 1, 10)
    first = next(c for c in fake.calls_to("chat.postMessage") if (c.params.get("metadata") or {}).get("event_type") == "loopline_announcement")
    assert clock.now().timestamp() - (time.monotonic() - first.at) >= at - 0.05  # not before its time
    wait(lambda: record(db, 0)["status"] == "sent")
    assert record(db, 0)["late"] is False

    # Cancel the other one from the confirmation's button.
    server.settle()
    never_id = record(db, 1)["id"][3:]
    confirm = next(m for m in fake.dms(ADMIN) if f"AN-{never_id}" in m["text"])
    assert "announce_cancel" in buttons(confirm["blocks"])
    slack.block_action(user=ADMIN, action_id="announce_cancel", value=never_id, channel=fake.dm_channel(ADMIN),
                       message_ts=confirm["ts"])
    rec = record(db, 1)
    assert rec["status"] == "cancelled" and {d["status"] for d in rec["deliveries"]} == {"cancelled"}
    time.sleep(0.5)
    assert len(copies(fake, "C0SALES")) == 1


def test_fanout_to_60_channels_through_rate_limits_and_faults(server, slack, fake, db):
    channels = [f"C0FAN{i:03d}" for i in range(60)]
    for ch in channels:
        fake.add_channel(ch, f"team-{ch[-3:].lower()}", members=[REP])
    seed_subscriptions(db, dict.fromkeys(channels, "mobile app"))
    fake.per_channel_rate = 1.0
    fake.fail_next("chat.postMessage", "ratelimited", retry_after=1, times=4)
    fake.fail_next("chat.postMessage", "internal_error", status=500, times=3)
    fake.fail_next("chat.postMessage", disconnect=True, times=1)
    fake.latency_for["chat.postMessage"] = 0.02
    slack.view_submission(open_modal(slack, fake), modal_values("Offline mode 📴", BODY, ["mobile app"]), user=ADMIN)
    rec = wait_status(db, "sent", timeout=40)
    assert all(d["status"] == "sent" for d in rec["deliveries"]) and len(rec["deliveries"]) == 60
    assert {ch: len(copies(fake, ch)) for ch in channels} == dict.fromkeys(channels, 1)
    assert fake.stats["429"] >= 4 and fake.stats["5xx"] >= 3


def test_archived_channel_is_recorded_reported_and_unsubscribed(server, slack, fake, db):
    fake.add_channel("C0OLD", "old-launches", archived=True, members=[REP])
    seed_subscriptions(db, {"C0SALES": "sso", "C0OLD": "sso", "C0PRODUCT": "sso"})
    slack.view_submission(open_modal(slack, fake), modal_values("SSO for everyone", BODY, ["sso"]), user=ADMIN)
    rec = wait_status(db, "sent")
    by_channel = {d["channel"]: d for d in rec["deliveries"]}
    assert by_channel["C0OLD"]["status"] == "failed" and by_channel["C0OLD"]["error"] == "is_archived"
    assert by_channel["C0SALES"]["status"] == "sent"
    server.settle()
    summary = fake.wait_until(lambda: next((m for m in fake.dms(ADMIN) if "reached 2 of 3" in json.dumps(m)), None))
    assert "is_archived" in json.dumps(summary["blocks"]) and "<#C0OLD>" in json.dumps(summary["blocks"])
    with db.read_session() as s:
        assert sub_svc.channel_subscriptions(s, team_id=TEAM, channel_id="C0OLD") == []
    # An archive event deactivates the channel's subscriptions too.
    slack.event({"type": "channel_archive", "channel": "C0PRODUCT", "user": REP})
    server.settle()
    with db.read_session() as s:
        assert sub_svc.channel_subscriptions(s, team_id=TEAM, channel_id="C0PRODUCT") == []
        assert sub_svc.channels_for_areas(s, team_id=TEAM, areas=["sso"]) == ["C0SALES"]


# --- exactly once across crashes ---------------------------------------------------------------------------


def _announce_directly(db: Database, areas: str, *, send_at: datetime | None = None,
                       now: datetime | None = None) -> int:
    with db.session() as s:
        return an_svc.create_announcement(s, team_id=TEAM, source_key=f"test:{time.time()}", title="Pricing page",
                                          body=BODY, areas=[areas], author=ADMIN, send_at=send_at, now=now).id


def test_a_copy_posted_before_a_crash_is_adopted_not_posted_again(settings, fake, db):
    from bot.core.slack_client import SlackClients
    from bot.features.announcements.delivery import DeliveryLoop
    from bot.features.announcements.render import metadata

    seed_subscriptions(db, {"C0SALES": "pricing", "C0PRODUCT": "pricing"})
    aid = _announce_directly(db, "pricing")
    loop = DeliveryLoop(db, SlackClients(settings), settings)
    claimed = loop.claim()
    assert claimed is not None and claimed.action == "post"
    # The process posts... and dies before recording the ts (simulated: post as it would, record nothing).
    ts = fake.add_message(claimed.channel, "Pricing page", user="UBOT", bot_id="BBOT",
                          metadata=metadata(aid, claimed.delivery_id))
    from sqlalchemy import delete, update

    from bot.core.models import Delivery, PostBudget
    with db.session() as s:  # the lease runs out (and with it the claim's hold on the channel's budget)
        s.execute(update(Delivery).where(Delivery.id == claimed.delivery_id)
                  .values(locked_until=clock.now() - timedelta(seconds=1)))
        s.execute(delete(PostBudget))
    restarted = DeliveryLoop(db, SlackClients(settings), settings)
    restarted.drain(timeout=10)
    rec = record(db)
    assert rec["status"] == "sent"
    assert {d["channel"]: d["ts"] for d in rec["deliveries"]}[claimed.channel] == ts
    assert restarted.stats["adopted"] == 1 and restarted.stats["posted"] == 1
    assert len(fake.bot_messages("C0SALES")) == 1 and len(fake.bot_messages("C0PRODUCT")) == 1
    assert fake.calls_to("conversations.history", channel=claimed.channel)


def test_a_time_that_passed_while_down_is_delivered_late_on_start(settings, fake, db):
    seed_subscriptions(db, {"C0SALES": "reports"})
    ten_min_ago = clock.now() - timedelta(minutes=10)
    _announce_directly(db, "reports", send_at=ten_min_ago + timedelta(seconds=30), now=ten_min_ago)
    assert record(db)["status"] == "scheduled"
    srv = RunningServer(settings)
    try:
        rec = wait_status(db, "sent")
    finally:
        srv.stop()
    assert rec["late"] is True and rec["deliveries"][0]["late"] is True
    assert len(copies(fake, "C0SALES")) == 1



def _serve(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": settings.slack_api_url, "DATABASE_URL": settings.database_url,
           "LOOPLINE_WORKSPACE_RATE": "25", "LOOPLINE_LOG_FORMAT": "text"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "server died"
            return False

    wait(up, 30, "for loopline serve")
    return proc


def test_kill_9_between_scheduling_and_sending_delivers_exactly_once(settings, fake, db):
    channels = ["C0SALES", "C0PRODUCT", "C0ACME"]
    seed_subscriptions(db, dict.fromkeys(channels, "api"))
    port = free_port()
    proc = _serve(settings, port)
    slack = SlackSender(f"http://127.0.0.1:{port}", SIGNING_SECRET, response_url_base=fake.url + "/webhook")
    try:
        at = int(time.time()) + 4
        view = open_modal(slack, fake)
        assert slack.view_submission(view, modal_values("API v2 🎉", BODY, ["api"], send_at=at), user=ADMIN).status_code == 200
        assert record(db)["status"] == "scheduled"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        time.sleep(max(0.0, at - time.time()) + 0.5)
        assert all(copies(fake, ch) == [] for ch in channels)  # its time passed while down
        proc = _serve(settings, port)
        rec = wait_status(db, "sent", timeout=20)
        assert all(d["status"] == "sent" for d in rec["deliveries"])
        time.sleep(1.0)
        assert {ch: len(copies(fake, ch)) for ch in channels} == dict.fromkeys(channels, 1)
    finally:
        slack.close()
        proc.kill()
        proc.wait(10)


def test_two_servers_on_one_postgres_send_once(settings, fake, db):
    if not settings.database_url.startswith("postgres"):
        pytest.skip("two replicas need a shared PostgreSQL (SQLite is one process's file); run with LOOPLINE_TEST_DB=postgres")
    channels = [f"C0REP{i:02d}" for i in range(30)]
    for ch in channels:
        fake.add_channel(ch, ch.lower(), members=[REP])
    seed_subscriptions(db, dict.fromkeys(channels, "payments"))
    fake.latency_for["chat.postMessage"] = 0.03
    one, two = RunningServer(settings), RunningServer(settings)
    try:
        _announce_directly(db, "payments")
        _announce_directly(db, "payments")
        wait(lambda: [r["status"] for r in export(db, "announcements")] == ["sent", "sent"], 30)
        stats = [one.rt.delivery.stats, two.rt.delivery.stats]
    finally:
        one.stop()
        two.stop()
    assert {ch: len(copies(fake, ch)) for ch in channels} == dict.fromkeys(channels, 2)
    assert all(s["posted"] > 0 for s in stats), stats  # both replicas took part


def test_an_expired_trigger_is_explained_not_silent(server, slack, fake, db):
    from bot.core.models import Area, utcnow

    with db.session() as s:
        s.add(Area(team_id="T0001", name="billing", label="Billing", created_at=utcnow()))
    slack.command("/announce", "", user=ADMIN, trigger_id="expired.123.abc", response_url=fake.response_url("slow"))
    posts = fake.wait_for_webhook("slow")
    assert "too slow to open the form" in json.dumps(posts) and "expired_trigger_id" in json.dumps(posts)
