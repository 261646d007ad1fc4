"""Feedback capture end to end: signed HTTP requests in, Web API calls out, export checked."""

from __future__ import annotations

import json

from tests.conftest import ADMIN, CUSTOMER, PM, REP, REP2, export
from tests.support.slack_requests import select_value, text_value

MESSY = ("Acme's admins can't export >10k rows to CSV & the UI just spins 🙃 — <!channel> pls fix, "
         "it's blocking Q3 renewal (see <@U0CUST>); also \"payload\" field is missing in the webhook")


def test_feedback_command_captures_at_once_and_confirms_privately(server, slack, fake, db):
    r = slack.command("/feedback", MESSY, user=REP, channel="C0SALES")
    assert r.status_code == 200
    body = r.json()
    assert body["response_type"] == "ephemeral"
    assert "FB-" in body["text"]
    rendered = json.dumps(body["blocks"])
    # The user's text is shown escaped: no live <!channel> ping, no live mention.
    assert "<!channel>" not in rendered and "&lt;!channel&gt;" in rendered
    assert "<@U0CUST>" not in rendered
    assert any(e.get("action_id") == "feedback_details" for b in body["blocks"] if b["type"] == "actions"
               for e in b["elements"])
    [rec] = export(db)
    assert rec["text"] == MESSY
    assert rec["source"] == "command" and rec["reporter"] == REP and rec["captured_by"] == REP
    assert rec["votes"] == 1 and rec["channel"] == "C0SALES"
    assert rec["id"] == body["text"].split()[-1]
    # Nothing was posted publicly.
    assert fake.bot_messages("C0SALES") == []


def test_feedback_command_usage_errors_are_private_and_show_the_form(server, slack, db):
    r = slack.command("/feedback", "account", user=REP)
    body = r.json()
    assert body["response_type"] == "ephemeral"
    assert "/feedback account NAME [ARR]" in body["text"]
    r = slack.command("/feedback", "account Acme Corp lots-of-money", user=REP)
    # Not a number at the end: the whole rest is the account name, no ARR — and nothing changes until
    # the person confirms.
    assert "Acme Corp lots-of-money" in json.dumps(r.json()) and "Map channel" in json.dumps(r.json())
    r = slack.command("/feedback", "help", user=REP)
    assert "/feedback watch" in r.json()["text"]
    assert export(db) == []


def test_feedback_without_text_opens_the_modal_and_submission_captures(server, slack, fake, db):
    r = slack.command("/feedback", "", user=PM, channel="C0PRODUCT")
    assert r.status_code == 200 and r.text == ""
    [call] = fake.wait_for("views.open")
    view = call.params["view"]
    if isinstance(view, str):
        view = json.loads(view)
    labels = [b["label"]["text"] for b in view["blocks"] if b["type"] == "input"]
    for word in ("Feedback", "Customer", "Product area", "Type"):
        assert any(word in label for label in labels), labels
    values = {"fb_text": text_value("SSO via Okta drops users after 10 min — «session_expired» & no retry"),
              "fb_customer": text_value("Globex"), "fb_arr": text_value("$1.2M"),
              "fb_area": text_value("  Identity   & SSO "), "fb_kind": select_value("bug")}
    r = slack.view_submission(view, values, user=PM)
    assert r.status_code == 200
    [rec] = export(db)
    assert rec["customer"] == "Globex" and rec["arr"] == 1_200_000 and rec["area"] == "identity & sso"
    assert rec["kind"] == "bug" and rec["source"] == "modal"
    server.settle()
    eph = fake.ephemerals(user=PM)
    assert eph and rec["id"] in eph[-1]["text"]


def test_modal_validation_errors_go_back_into_the_modal(server, slack, fake, db):
    slack.command("/feedback", "", user=PM, channel="C0PRODUCT")
    [call] = fake.wait_for("views.open")
    view = call.params["view"]
    r = slack.view_submission(view, {"fb_text": text_value("x"), "fb_arr": text_value("a lot"),
                                     "fb_kind": select_value("idea")}, user=PM)
    assert r.json()["response_action"] == "errors" and "fb_arr" in r.json()["errors"]
    assert export(db) == []


def test_reaction_captures_once_counts_votes_and_withdraws(server, slack, fake, db):
    ts = fake.add_message("C0ACME", "Could you add SAML group sync? We onboard 400 people in Jan 🙏 <!here>",
                          user=CUSTOMER)
    r = slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bulb", ext_shared=True)
    assert r.status_code == 200
    server.settle()
    [rec] = export(db)
    assert rec["text"].startswith("Could you add SAML group sync?")
    assert rec["kind"] == "idea" and rec["source"] == "reaction"
    assert rec["reporter"] == CUSTOMER and rec["captured_by"] == REP and rec["votes"] == 1
    assert rec["permalink"] and "C0ACME" in rec["permalink"]
    # The reactor got a private confirmation; nothing visible in the customer channel.
    fake.wait_until(lambda: fake.ephemerals(user=REP, channel="C0ACME"))
    assert fake.bot_messages("C0ACME") == []
    assert "&lt;!here&gt;" in json.dumps(fake.ephemerals(user=REP)[-1]["blocks"])

    # A retried delivery of the same event (same event_id) and a second emoji by the same person: no new vote.
    slack.reaction("reaction_added", user=REP2, channel="C0ACME", ts=ts, reaction="memo", event_id="EvSAME1")
    slack.reaction("reaction_added", user=REP2, channel="C0ACME", ts=ts, reaction="memo", event_id="EvSAME1",
                   retry_num=1)
    slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="memo")
    server.settle()
    [rec] = export(db)
    assert rec["votes"] == 2

    # REP2 takes their reaction back: vote gone, item stays.
    slack.reaction("reaction_removed", user=REP2, channel="C0ACME", ts=ts, reaction="memo")
    server.settle()
    assert export(db)[0]["votes"] == 1
    # The capturer removes both of theirs with no other votes left: withdrawn (kept, not exported by default).
    slack.reaction("reaction_removed", user=REP, channel="C0ACME", ts=ts, reaction="memo")
    slack.reaction("reaction_removed", user=REP, channel="C0ACME", ts=ts, reaction="bulb")
    server.settle()
    assert export(db) == []
    [withdrawn] = export(db, include_withdrawn=True)
    assert withdrawn["status"] == "withdrawn"


def test_untagged_reactions_and_unknown_messages_are_ignored(server, slack, fake, db):
    ts = fake.add_message("C0SALES", "lunch?", user=REP)
    slack.reaction("reaction_added", user=REP2, channel="C0SALES", ts=ts, reaction="pizza")
    slack.reaction("reaction_added", user=REP2, channel="C0SALES", ts="1700000000.000001", reaction="bug")
    server.settle()
    assert export(db) == []


def test_watch_captures_top_level_human_messages_only(server, slack, fake, db):
    r = slack.command("/feedback", "watch", user=PM, channel="C0ACME")
    assert "Watching" in r.json()["text"]
    server.settle()
    ts1 = fake.add_message("C0ACME", "Dark mode for the dashboard, please & thank you <3", user=CUSTOMER)
    slack.message(channel="C0ACME", user=CUSTOMER, text="Dark mode for the dashboard, please & thank you <3", ts=ts1)
    slack.message(channel="C0ACME", user=CUSTOMER, text="+1 to that", ts="1800000000.000200", thread_ts=ts1)
    slack.event({"type": "message", "subtype": "channel_join", "channel": "C0ACME", "user": REP2,
                 "text": "<@U0REP2> has joined the channel", "ts": "1800000000.000300"})
    slack.event({"type": "message", "channel": "C0ACME", "bot_id": "B0OTHER", "user": "U0OTHERBOT",
                 "text": "Deploy finished", "ts": "1800000000.000400"})
    server.settle()
    recs = export(db)
    assert [r["text"] for r in recs] == ["Dark mode for the dashboard, please & thank you <3"]
    assert recs[0]["source"] == "watch" and recs[0]["reporter"] == CUSTOMER
    fake.wait_until(lambda: export(db)[0]["permalink"])

    # Edits follow, deletions withdraw.
    slack.message_changed(channel="C0ACME", ts=ts1, new_text="Dark mode AND high-contrast mode", old_text="x",
                          user=CUSTOMER)
    server.settle()
    assert export(db)[0]["text"] == "Dark mode AND high-contrast mode"
    slack.message_deleted(channel="C0ACME", ts=ts1, old_text="Dark mode AND high-contrast mode", user=CUSTOMER)
    server.settle()
    assert export(db) == []

    slack.command("/feedback", "unwatch", user=PM, channel="C0ACME")
    slack.message(channel="C0ACME", user=CUSTOMER, text="not captured any more", ts="1800000000.000900")
    server.settle()
    assert export(db, include_withdrawn=True)[-1]["text"] != "not captured any more"


def test_watch_in_private_channel_explains_how_to_invite(server, slack, fake, db):
    slack.command("/feedback", "watch", user=REP, channel="G0SECRET", response_url=fake.response_url("w"))
    server.settle()
    posts = fake.wait_for_webhook("w")
    assert "/invite @Loopline" in json.dumps(posts[-1])
    from bot.core.channels import get_channel
    with db.read_session() as s:
        ch = get_channel(s, team_id="T0001", channel_id="G0SECRET")
        assert ch is not None and not ch.watched


def _button(body, action_id):
    return next(e for b in body["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action_id)


def test_account_mapping_fills_customer(server, slack, fake, db):
    r = slack.command("/feedback", "account Acme Corp 120k", user=ADMIN, channel="C0ACME")
    assert "Acme Corp" in r.json()["text"]
    slack.command("/feedback", "before the mapping", user=REP, channel="C0ACME")
    confirm = _button(r.json(), "feedback_account_confirm")
    slack.block_action(user=ADMIN, action_id="feedback_account_confirm", value=confirm["value"], channel="C0ACME")
    server.settle()
    assert "now maps to the account" in json.dumps(fake.webhook_posts())
    slack.command("/feedback", "Bulk-edit of seats would save us hours", user=REP, channel="C0ACME")
    recs = export(db)
    assert recs[0]["customer"] is None
    rec = recs[1]
    assert rec["customer"] == "Acme Corp" and rec["arr"] == 120_000


def test_feedback_that_starts_with_account_is_not_lost(server, slack, fake, db):
    text = "Account switching is broken for Acme: SSO loops 3"
    r = slack.command("/feedback", text, user=REP, channel="C0ACME")
    assert export(db) == []  # asked, not guessed
    button = _button(r.json(), "feedback_capture_instead")
    slack.block_action(user=REP, action_id="feedback_capture_instead", value=button["value"], channel="C0ACME")
    [rec] = export(db)
    assert rec["text"] == text and rec["customer"] is None and rec["captured_by"] == REP
    server.settle()
    assert rec["id"] in json.dumps(fake.webhook_posts())
    from bot.core.channels import get_channel
    with db.read_session() as s:
        ch = get_channel(s, team_id="T0001", channel_id="C0ACME")
        assert ch is None or ch.customer is None


def test_bad_signatures_and_malformed_bodies_get_4xx_and_server_stays_up(server, slack, fake, db):
    assert slack.command("/feedback", "unsigned", sign=False).status_code == 401
    stale = slack.command("/feedback", "old", timestamp=1_500_000_000)
    assert stale.status_code == 401
    tampered = slack.post_raw("command=%2Ffeedback&text=hi", "application/x-www-form-urlencoded",
                              headers={"x-slack-signature": "v0=deadbeef"})
    assert tampered.status_code == 401
    garbage = slack.post_raw(b"\xff\xfe{not json", "application/json")
    assert 400 <= garbage.status_code < 500
    weird = slack.post_raw("payload=%7Bnot-json", "application/x-www-form-urlencoded")
    assert 400 <= weird.status_code < 500
    # Still serving.
    assert slack.http.get(server.url + "/healthz").json()["ok"] is True
    assert slack.command("/feedback", "still alive", user=REP).status_code == 200
    assert len(export(db)) == 1


def test_every_subscribed_event_has_a_listener(server, slack):
    from bot.slack.events import SUBSCRIBED_EVENTS

    for etype in SUBSCRIBED_EVENTS:
        ev = {"type": etype, "user": REP, "channel": "C0SALES", "event_ts": "1.1"}
        if etype.startswith("reaction"):
            ev.update(reaction="bulb", item={"type": "message", "channel": "C0SALES", "ts": "1.1"})
        if etype == "tokens_revoked":
            ev["tokens"] = {"bot": []}
        r = slack.event(ev)
        assert r.status_code == 200, (etype, r.status_code, r.text)


def _view(call):
    view = call.params["view"]
    return json.loads(view) if isinstance(view, str) else view


def test_message_shortcut_prefills_the_modal_and_captures_once(server, slack, fake, db):
    r = slack.command("/feedback", "account Initech 45k", user=ADMIN, channel="C0ACME")
    slack.block_action(user=ADMIN, action_id="feedback_account_confirm", channel="C0ACME",
                       value=_button(r.json(), "feedback_account_confirm")["value"])
    text = "Our auditors need SCIM deprovisioning logs — “Ignore previous instructions” & <b>bold</b> 🙈"
    ts = fake.add_message("C0ACME", text, user=CUSTOMER)
    slack.message_shortcut(user=REP, channel="C0ACME", message={"text": text, "user": CUSTOMER, "ts": ts,
                                                                 "team": "T0001"})
    [call] = fake.wait_for("views.open")
    view = _view(call)
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["fb_text"]["element"]["initial_value"] == text
    assert blocks["fb_customer"]["element"]["initial_value"] == "Initech"
    shown = json.dumps(view["blocks"])
    assert f"<@{CUSTOMER}>" in shown and f"/archives/C0ACME/p{ts.replace('.', '')}" in shown

    values = {"fb_text": text_value(text), "fb_customer": text_value("Initech"), "fb_arr": text_value("45k"),
              "fb_area": text_value("Identity"), "fb_kind": select_value("idea")}
    assert slack.view_submission(view, values, user=REP).status_code == 200
    server.settle()
    [rec] = export(db)
    assert rec["source"] == "shortcut" and rec["reporter"] == CUSTOMER and rec["captured_by"] == REP
    assert rec["ts"] == ts and rec["channel"] == "C0ACME" and rec["kind"] == "idea" and rec["arr"] == 45_000
    assert rec["permalink"] == fake.permalink("C0ACME", ts)  # Slack's own, fetched after the ack

    # A reaction on the same message later is a vote on the same item, not a second item.
    slack.reaction("reaction_added", user=REP2, channel="C0ACME", ts=ts, reaction="bulb")
    server.settle()
    [rec] = export(db)
    assert rec["votes"] == 2
    assert fake.bot_messages("C0ACME") == []


def test_add_details_button_opens_prefilled_modal_and_saves(server, slack, fake, db):
    r = slack.command("/feedback", "Reports page is slow for big workspaces", user=REP, channel="C0SALES")
    fid = r.json()["text"].split("FB-")[1]
    slack.block_action(user=REP, action_id="feedback_details", value=fid, channel="C0SALES")
    [call] = fake.wait_for("views.open")
    view = _view(call)
    assert "FB-" + fid in view["title"]["text"]
    values = {"fb_text": text_value("Reports page is slow (>30 s) for workspaces with 10k+ users"),
              "fb_customer": text_value("Umbrella Corp"), "fb_arr": text_value(""), "fb_area": text_value("Reporting"),
              "fb_kind": select_value("bug")}
    slack.view_submission(view, values, user=REP)
    [rec] = export(db)
    assert rec["text"].startswith("Reports page is slow (>30 s)") and rec["customer"] == "Umbrella Corp"
    assert rec["area"] == "reporting" and rec["kind"] == "bug" and rec["votes"] == 1
    server.settle()
    assert any("Saved" in e["text"] for e in fake.ephemerals(user=REP))


def test_only_the_capturer_taking_back_the_last_tag_withdraws(server, slack, fake, db):
    ts = fake.add_message("C0ACME", "Let admins pin dashboards for everyone", user=CUSTOMER)
    slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bulb")
    server.settle()
    slack.reaction("reaction_added", user=REP2, channel="C0ACME", ts=ts, reaction="bulb")
    server.settle()
    # The capturer steps back while someone else still votes: the item stays, with one vote.
    slack.reaction("reaction_removed", user=REP, channel="C0ACME", ts=ts, reaction="bulb")
    server.settle()
    [rec] = export(db)
    assert rec["votes"] == 1 and rec["captured_by"] == REP
    # The other voter leaves too; they are not the capturer, so the item is kept (with no votes).
    slack.reaction("reaction_removed", user=REP2, channel="C0ACME", ts=ts, reaction="bulb")
    server.settle()
    [rec] = export(db)
    assert rec["votes"] == 0
