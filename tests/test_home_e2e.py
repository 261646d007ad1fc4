"""App Home end to end: every feature's piece reaches the Home tab the fake Slack received via views.publish."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.core import clock
from bot.core.models import Decision, DigestRun, Feedback
from bot.devtools.fakeslack.blockkit import check_view
from bot.features.subscriptions import service as sub_svc
from tests.conftest import ADMIN, PM, REP, REP2, export
from tests.test_announcements_e2e import copies, modal_values, open_modal
from tests.test_decisions_e2e import capture_acme, click, log_decision
from tests.test_digest import seed

TEAM = "T0001"
MINE = "Exports drop the <custom fields> again & <!channel> says it's urgent 😤 — Acme, Q3 renewal"


@pytest.fixture
def settings(settings):
    # Offline TF-IDF themes and a brisk announcement pace keep this test short; the code paths are the same.
    return settings.model_copy(update={"loopline_embedder": "tfidf", "loopline_workspace_rate": 25.0})


def open_home(slack: Any, fake: Any, user: str) -> dict[str, Any]:
    before = len(fake.calls_to("views.publish"))
    r = slack.event({"type": "app_home_opened", "user": user, "channel": "D0HOME" + user[-3:], "tab": "home",
                     "event_ts": f"{time.time():.6f}"})
    assert r.status_code == 200
    fake.wait_for("views.publish", count=before + 1, timeout=10)
    view = fake.home_view(user)
    assert view is not None and view["type"] == "home"
    return view


def blocks_text(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def test_home_shows_feedback_decisions_announcements_subscriptions_and_themes(server, slack, fake, db):
    seed(db, now=clock.now())  # a realistic week of feedback so the digest has themes

    # ADMIN captures two items (one by command, one by tagging a customer's message), REP2 one of their own.
    r = slack.command("/feedback", MINE, user=ADMIN, channel="C0SALES")
    mine_cmd = r.json()["text"].split()[-1]
    acme_id, _ = capture_acme(server, slack, fake)  # captured by REP in the shared channel
    ts = fake.add_message("C0SALES", "SSO via Okta before renewal, or they walk 🚪", user=REP2)
    slack.reaction("reaction_added", user=ADMIN, channel="C0SALES", ts=ts, reaction="bulb")
    server.settle()
    mine_react = next(x["id"] for x in export(db) if x["ts"] == ts)
    assert mine_cmd.startswith("FB-") and mine_react.startswith("FB-")

    # PM logs a decision linked to the customer's feedback, due in the past: overdue; another, clicked to review.
    overdue = log_decision(server, slack, fake, feedback=acme_id, due="2020-01-01")
    review = log_decision(server, slack, fake, due=None)
    click(slack, user=PM, decision=review, status="in_review")
    decided = log_decision(server, slack, fake, due=None)
    click(slack, user=PM, decision=decided, status="decided")
    server.settle()

    # ADMIN subscribes #product to "exports" and announces; PM and REP acknowledge ("Got it").
    slack.command("/subscribe", "exports", user=ADMIN, channel="C0PRODUCT", response_url=fake.response_url("sub"))
    server.settle()
    fake.wait_for_webhook("sub")
    view = open_modal(slack, fake, user=ADMIN)
    r = slack.view_submission(view, modal_values("CSV exports keep <custom fields> & tags", "From Monday 🎉",
                                                 ["exports"]), user=ADMIN)
    assert r.status_code == 200 and r.text == ""
    [copy] = fake.wait_until(lambda: copies(fake, "C0PRODUCT"), 15, "for the announcement")
    an_id = copy["metadata"]["event_payload"]["announcement_id"]
    for who in (PM, PM, REP):  # PM double-clicks: counted once
        slack.block_action(user=who, action_id="announce_ack", value=str(an_id), channel="C0PRODUCT",
                           message_ts=copy["ts"])
    server.settle()

    # The digest runs, so Home can show the latest themes.
    slack.command("/digest", "now", user=PM, channel="C0PRODUCT")
    fake.wait_until(lambda: _posted(db), 30, "for the digest")
    server.settle()

    home = open_home(slack, fake, ADMIN)
    text = blocks_text(home)
    assert len(home["blocks"]) <= 100 and check_view(home) == []
    # The user's own feedback (both items, not REP's), escaped.
    assert mine_cmd in text and mine_react in text and acme_id not in text.split("Feedback you captured")[1]
    assert "&lt;custom fields&gt;" in text and "&lt;!channel&gt;" in text
    assert "<!channel>" not in text and "<!here>" not in text and "<custom" not in text
    # Counts for the week and the open decisions: the overdue one flagged, the decided one gone.
    with db.read_session() as s:
        total = s.scalar(select(func.count()).select_from(Feedback).where(
            Feedback.status == "active", Feedback.created_at >= clock.now() - timedelta(days=7)))
    assert total and total >= 20 and f"*{total}* feedback items in the last 7 days" in text
    assert "*2* open decisions" in text
    lines = {b_id: _line_with(home, b_id) for b_id in (overdue["id"], review["id"])}
    assert "overdue" in lines[overdue["id"]] and "proposed" in lines[overdue["id"]]
    assert lines[overdue["id"]].count("overdue") == 1  # the marker once, not also glued onto the status
    assert "in review" in lines[review["id"]] and "overdue" not in lines[review["id"]]
    assert f"*{decided['id']}*" not in text
    assert "Drop IE11 &amp; &lt;!channel&gt; support" in text
    # Announcements ADMIN authored, with acknowledgements per channel (2 distinct people in #product).
    an_line = _line_with(home, f"AN-{an_id}")
    assert "&lt;custom fields&gt; &amp; tags" in an_line and "<#C0PRODUCT> 2" in an_line
    # The workspace's subscriptions and the latest digest's themes.
    assert "<#C0PRODUCT>: exports" in text
    with db.read_session() as s:
        run = s.scalars(select(DigestRun).where(DigestRun.status == "posted")).one()
    first_theme = run.summary["themes"][0]["title"]
    assert "Top themes" in text and json.dumps(first_theme, ensure_ascii=False)[1:-1][:30] in text.replace(
        "&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    assert any(e["action_id"] == "home_refresh" for b in home["blocks"] if b["type"] == "actions"
               for e in b["elements"])

    # Another person's Home: their own feedback only, no announcements section, same decisions.
    rep_home = blocks_text(open_home(slack, fake, REP))
    mine_part = rep_home.split("Feedback you captured")[1]
    assert acme_id in mine_part and mine_cmd not in mine_part and "Your announcements" not in rep_home
    assert overdue["id"] in rep_home


def test_home_stays_within_100_blocks_with_lots_of_data(server, slack, fake, db):
    long = "Bulk export of <every> field & more 🧾 " * 40
    with db.session() as s:
        for i in range(40):
            s.add(Feedback(team_id=TEAM, source_key=f"lots:{i}", text=f"#{i} {long}", kind=("bug", "idea")[i % 2],
                           area=f"area {i % 9} <x>", source="command", captured_by=PM, customer="Acme & Co <3",
                           permalink=f"https://example.slack.com/archives/C0SALES/p17100000{i:02d}000100"))
        for i in range(30):
            s.add(Decision(team_id=TEAM, title=f"Decision {i} " + long[:200], status=("proposed", "in_review")[i % 2],
                           owner=PM, due=date(2020, 1, 1) if i % 3 == 0 else None, channel="C0SALES"))
        for i in range(120):
            fake.add_channel(f"C0SUB{i:03d}", f"team-{i}", members=[PM])
            sub_svc.subscribe(s, team_id=TEAM, channel_id=f"C0SUB{i:03d}",
                              text=", ".join(f"Area {j} & <more>" for j in range(i % 7 + 1)), by=ADMIN,
                              may_create=True)
    home = open_home(slack, fake, PM)
    text = blocks_text(home)
    assert len(home["blocks"]) <= 100 and check_view(home) == []
    assert "*40* feedback items" in text and "*30* open decisions" in text
    assert "…and 20 more open decisions" in text and "…and 30 more of yours" in text
    assert "more channels" in text and "<#C0SUB000>" in text
    assert "overdue" in text and "<every>" not in text and "&lt;every&gt;" in text
    assert home["blocks"][-1]["type"] == "actions"  # the Refresh button survives
    # Refresh republishes the same view.
    n = len(fake.calls_to("views.publish"))
    slack.block_action(user=PM, action_id="home_refresh", value="refresh", channel=None)
    fake.wait_for("views.publish", count=n + 1, timeout=10)


def _posted(db: Any) -> Any:
    with db.read_session() as s:
        return s.scalar(select(DigestRun.id).where(DigestRun.status == "posted"))


def _line_with(view: dict[str, Any], needle: str) -> str:
    for b in view["blocks"]:
        for t in [(b.get("text") or {}).get("text", "")] + [e.get("text", "") for e in b.get("elements", [])
                                                              if isinstance(e, dict) and e.get("type") == "mrkdwn"]:
            if needle in t:
                return str(t)
    raise AssertionError(f"{needle} not in the Home view")
