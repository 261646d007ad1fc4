"""Duplicates at capture end to end: signed requests in, the fake Slack's calls and the export checked.

"Looks like FB-12 — Okta SSO (Acme, Globex · 5 votes)" with Merge / Keep separate, the merge note with
Undo, the loop closing for the people of a merged item, and the digest and Home counting it once.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.core import channels as channel_svc
from bot.core.settings import Settings, load_settings
from bot.features.decisions import service as dec_svc
from bot.features.feedback import service as fb_svc
from tests.support.env import ADMIN, BOT_TOKEN, CUSTOMER, EXT_TEAM, PM, REP, REP2, SIGNING_SECRET, export

OKTA = "Okta SSO logs everyone out after 10 minutes & they have to sign in again <!channel>"
OKTA_AGAIN = "Okta SSO keeps logging everyone out after 10 minutes, they have to sign in again"
DARK = "Please add dark mode to the mobile app 🌙 — our night shift <@U0CUST> hates the glare"


@pytest.fixture
def settings(fake, db_url) -> Settings:
    # The bundled static model: the same vectors (and threshold) whatever else is installed.
    return load_settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                         slack_api_url=fake.base_url, database_url=db_url, loopline_log_format="text",
                         loopline_embedder="static")


def hook(fake, name: str) -> str:
    return fake.url.rstrip("/") + "/webhook/" + name


def capture(slack, text: str, *, user: str, name: str, channel: str = "C0SALES") -> int:
    r = slack.command("/feedback", text, user=user, channel=channel, response_url=None if name is None else
                      slack.response_url_base + "/" + name)
    assert r.status_code == 200, r.text
    return int(r.json()["text"].split("FB-")[-1])


def seed(db, text: str, *, user: str, customer: str | None = None, arr: float | None = None,
         key: str | None = None) -> int:
    with db.session() as s:
        item, _ = fb_svc.capture_feedback(s, team_id="T0001", source="command", source_key=key or f"seed:{text[:40]}",
                                          text=text, channel="C0SALES", reporter=user, captured_by=user,
                                          customer=customer, arr=arr)
        return item.id


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def by_id(db) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in export(db)}


def test_close_item_is_suggested_privately_and_unrelated_is_not(server, slack, fake, db):
    old = seed(db, OKTA, user=PM, customer="Acme Corp", arr=120_000)
    with db.session() as s:
        fb_svc.add_vote(s, feedback_id=old, user_id=ADMIN, via="button")
    server.settle()

    new = capture(slack, OKTA_AGAIN, user=REP, name="dup1")
    server.settle()
    [note] = fake.wait_for_webhook("dup1")
    assert note["response_type"] == "ephemeral" and not note.get("replace_original")
    assert note["text"].startswith(f"Looks like FB-{old} — Okta SSO logs everyone out after 10 minutes &amp; ")
    assert note["text"].endswith("… (Acme Corp · 2 votes)")
    rendered = json.dumps(note["blocks"])
    assert "<!channel>" not in rendered  # the matched item's words are escaped
    [merge, keep] = buttons(note["blocks"])
    assert merge["text"]["text"] == f"Merge into FB-{old}" and keep["text"]["text"] == "Keep separate"
    assert json.loads(merge["value"]) == {"f": new, "i": old, "all": [old]}
    # Nothing public anywhere.
    assert fake.bot_messages("C0SALES") == []

    # Nothing close: no suggestion at all.
    capture(slack, DARK, user=REP, name="dup2")
    server.settle()
    assert fake.webhook_posts("dup2") == []


def test_merge_moves_votes_accounts_links_and_undo_restores_exactly(server, slack, fake, db):
    old = seed(db, OKTA, user=PM, customer="Acme Corp", arr=120_000)
    with db.session() as s:
        fb_svc.add_vote(s, feedback_id=old, user_id=ADMIN, via="button")
        channel_svc.set_account(s, team_id="T0001", channel_id="C0GLOBEX", customer="Globex", arr=80_000)
        d, _ = dec_svc.create_decision(s, team_id="T0001", source_key="d1", title="Fix SSO sessions", created_by=PM,
                                       channel="C0PRODUCT", feedback_ids=[])
        did = d.id
    fake.add_channel("C0GLOBEX", "ext-globex", members=[REP2])
    server.settle()
    new = capture(slack, OKTA_AGAIN, user=REP2, name="m1", channel="C0GLOBEX")
    with db.session() as s:  # the new item was linked to the decision, and PM also voted for it
        dec_svc.link_feedback(s, team_id="T0001", decision_id=did, feedback_id=new, by=PM)
        fb_svc.add_vote(s, feedback_id=new, user_id=PM, via="button")
    server.settle()
    [note] = fake.wait_for_webhook("m1")
    [merge, _] = buttons(note["blocks"])

    before = by_id(db)
    assert before[f"FB-{old}"]["votes"] == 2 and before[f"FB-{new}"]["votes"] == 2
    # A double click (Slack resends the same action) merges once.
    for _ in range(2):
        r = slack.block_action(user=REP2, action_id="feedback_merge", value=merge["value"], channel="C0GLOBEX",
                               action_ts="1765000000.000100", response_url=hook(fake, "m1-click"))
        assert r.status_code == 200
    server.settle()
    answer = fake.wait_for_webhook("m1-click")[-1]
    assert answer["replace_original"] is True
    assert f"Merged FB-{new} into FB-{old}" in answer["text"]
    assert "(Acme Corp, Globex · 3 votes)" in json.dumps(answer["blocks"], ensure_ascii=False)
    [undo] = buttons(answer["blocks"])
    assert undo["text"]["text"] == "Undo"

    after = by_id(db)
    assert after[f"FB-{new}"]["merged_into"] == f"FB-{old}" and after[f"FB-{old}"]["merged_into"] is None
    assert after[f"FB-{new}"]["text"] == OKTA_AGAIN  # both texts and sources kept
    assert after[f"FB-{old}"]["votes"] == 3  # PM, ADMIN, REP2: PM once though PM voted for both
    assert after[f"FB-{new}"]["votes"] == 0
    assert after[f"FB-{old}"]["decision_ids"] == [f"D-{did}"] and after[f"FB-{new}"]["decision_ids"] == []
    assert export(db, "decisions")[0]["feedback_ids"] == [f"FB-{old}"]

    r = slack.block_action(user=REP2, action_id="feedback_undo_merge", value=undo["value"], channel="C0GLOBEX",
                           response_url=hook(fake, "m1-undo"))
    assert r.status_code == 200
    server.settle()
    assert "is its own item again" in fake.wait_for_webhook("m1-undo")[-1]["text"]
    assert by_id(db) == before  # votes, links and merged_into exactly as before the merge
    assert export(db, "decisions")[0]["feedback_ids"] == [f"FB-{new}"]


def test_keep_separate_is_remembered(server, slack, fake, db):
    old = seed(db, OKTA, user=PM)
    new = capture(slack, OKTA_AGAIN, user=REP, name="k1")
    server.settle()
    [note] = fake.wait_for_webhook("k1")
    [_, keep] = buttons(note["blocks"])
    slack.block_action(user=REP, action_id="feedback_keep_separate", value=keep["value"],
                       response_url=hook(fake, "k1-click"))
    server.settle()
    answer = fake.wait_for_webhook("k1-click")[-1]
    assert answer["replace_original"] is True and "Kept separate" in answer["text"]
    assert by_id(db)[f"FB-{new}"]["merged_into"] is None
    # The check again for the same item (as a retried job would): the pair is not offered any more.
    from bot.core.common import enqueue

    with db.session() as s:
        enqueue(s, key="similar-again", kind="feedback.similar", team_id="T0001",
                payload={"feedback_id": new, "user": REP, "channel": "C0SALES", "response_url": hook(fake, "k2")})
    server.settle()
    assert fake.webhook_posts("k2") == []
    assert old != new


def test_loop_closes_for_the_people_of_a_merged_item(server, slack, fake, db):
    old = seed(db, OKTA, user=PM)
    with db.session() as s:
        d, _ = dec_svc.create_decision(s, team_id="T0001", source_key="d2", title="Fix SSO sessions", created_by=PM,
                                       owner=PM, channel="C0PRODUCT", feedback_ids=[old])
        did = d.id
    server.settle()
    new = capture(slack, OKTA_AGAIN, user=REP2, name="l1")
    server.settle()
    [merge, _] = buttons(fake.wait_for_webhook("l1")[0]["blocks"])
    slack.block_action(user=REP2, action_id="feedback_merge", value=merge["value"], response_url=hook(fake, "l1m"))
    server.settle()
    decision = export(db, "decisions")[0]
    r = slack.block_action(user=PM, action_id="decision_status:decided", value=str(did),
                           channel=decision["channel"], message_ts=decision["ts"])
    assert r.status_code == 200
    server.settle()
    fake.wait_until(lambda: fake.dms(REP2), message="for REP2's loop DM")
    assert f"FB-{new}" in json.dumps(fake.dms(REP2)[-1])  # their own item, merged, is named


def test_digest_and_home_count_a_merged_item_once(server, slack, fake, db):
    from datetime import timedelta

    from bot.core import clock
    from bot.features.digests.service import build_digest
    from bot.features.feedback import merging
    from bot.features.home.service import home_data
    from bot.themes import StaticEmbedder

    old = seed(db, OKTA, user=PM, customer="Acme Corp", arr=120_000)
    new = seed(db, OKTA_AGAIN, user=REP, customer="Globex", arr=80_000)
    other = seed(db, DARK, user=REP)
    with db.session() as s:
        merging.merge(s, team_id="T0001", feedback_id=new, into_id=old, by=REP, request_key="t")
    now = clock.now()
    with db.read_session() as s:
        data = build_digest(s, team_id="T0001", channel="C0PRODUCT", period_key="k", start=now - timedelta(days=7),
                            end=now + timedelta(minutes=1), label="this week", embedder=StaticEmbedder())
        home = home_data(s, team_id="T0001", user_id=REP)
    assert data.total == 2
    ids = sorted(i for t in data.themes for i in t.feedback_ids) + data.other_ids
    assert new not in ids and {old, other} <= set(ids)
    # The merged item's account (Globex) counts under the surviving item's theme, its ARR once.
    okta = next(t for t in data.themes if old in t.feedback_ids)
    assert set(okta.accounts) == {"Acme Corp", "Globex"} and okta.arr == 200_000
    assert home.week_total == 2

    # App Home as people see it: "2" items this week, not 3.
    slack.event({"type": "app_home_opened", "user": REP, "channel": "D0REP", "tab": "home"})
    server.settle()
    view = fake.wait_until(lambda: fake.home_view(REP))
    assert "3 items" not in json.dumps(view)


def test_outsider_gets_no_suggestion_and_a_shared_channel_sees_nothing(server, slack, fake, db):
    seed(db, OKTA, user=PM, customer="Globex", arr=500_000)
    # A capture by someone not of the installing workspace (a command from another workspace).
    r = slack.command("/feedback", OKTA_AGAIN, user=CUSTOMER, channel="C0ACME", team=EXT_TEAM,
                      response_url=slack.response_url_base + "/out1")
    assert r.status_code == 200
    server.settle()
    assert fake.webhook_posts("out1") == []
    assert "Globex" not in json.dumps(r.json())

    # The rep tags the customer's words in the shared channel: the suggestion goes to the rep alone.
    ts = fake.add_message("C0ACME", OKTA_AGAIN + " (again!)", user=CUSTOMER)
    slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="memo", ext_shared=True)
    server.settle()
    fake.wait_until(lambda: any("Looks like" in e["text"] for e in fake.ephemerals(user=REP, channel="C0ACME")))
    assert fake.ephemerals(user=CUSTOMER) == [] and fake.bot_messages("C0ACME") == []
    assert fake.dms(CUSTOMER) == []


def test_the_check_waits_while_the_edge_is_busy(server, slack, fake, db):
    import time

    from sqlalchemy import select, update

    from bot.core import clock
    from bot.core.models import Job

    seed(db, OKTA, user=PM)
    server.rt.writer.busy_until = time.monotonic() + 60  # a burst of acks is going on
    capture(slack, OKTA_AGAIN, user=REP, name="busy")
    fake.wait_until(lambda: _attempted(db), message="for the check to be tried once")
    server.settle()
    assert fake.webhook_posts("busy") == []  # deferred, not dropped
    server.rt.writer.busy_until = 0.0
    with db.session() as s:
        s.execute(update(Job).where(Job.kind == "feedback.similar").values(run_after=clock.now()))
    server.settle()
    assert "Looks like" in fake.wait_for_webhook("busy")[-1]["text"]
    with db.read_session() as s:
        assert s.scalar(select(Job.status).where(Job.kind == "feedback.similar")) == "done"


def _attempted(db) -> bool:
    from sqlalchemy import select

    from bot.core.models import Job

    with db.read_session() as s:
        return bool(s.scalar(select(Job.attempts).where(Job.kind == "feedback.similar")))
