"""What watch mode keeps, and which words a capture stores, replayed with Slack's recorded payloads
(tests/data/slack_payloads/README.md)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from bot.devtools.slack_requests import TEAM
from tests.support.env import CUSTOMER, DATA, PM, REP, RunningServer, export
from tests.support.slack_requests import SlackSender

PAYLOADS = DATA / "slack_payloads"
PLACEHOLDER = "This content can't be displayed."


def load(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text())


def watch(server: RunningServer, slack: SlackSender, channel: str = "C0ACME") -> None:
    r = slack.command("/feedback", "watch", user=PM, channel=channel)
    assert "Watching" in r.json()["text"]
    server.settle()


# --- watch mode never drops an acked message on a stale view ------------------------------------


def test_message_right_after_unarchive_is_captured(server, slack, fake, db):
    watch(server, slack)
    slack.event({"type": "channel_archive", "channel": "C0ACME", "user": PM})
    server.settle()
    # The edge looks at watch mode while the channel is archived (a message elsewhere)...
    slack.message(channel="C0SALES", user=REP, text="lunch?", ts="1800000000.000100")
    # ...then the channel comes back and the customer writes at once.
    slack.event({"type": "channel_unarchive", "channel": "C0ACME", "user": PM})
    server.settle()
    r = slack.message(channel="C0ACME", user=CUSTOMER, text="We're back: bulk export still times out ⏳ & <3",
                      ts="1800000000.000200")
    assert r.status_code == 200
    server.settle()
    assert [rec["text"] for rec in export(db)] == ["We're back: bulk export still times out ⏳ & <3"]


def test_watch_turned_on_by_another_replica_is_honoured_at_once(server, slack, settings, fake, db):
    other = RunningServer(settings)  # a second `loopline serve` on the same database
    try:
        other_slack = SlackSender(other.url, slack.verifier.signing_secret)
        # The other replica has looked at watch mode already (a message elsewhere)...
        other_slack.message(channel="C0SALES", user=REP, text="lunch?", ts="1800000000.000100")
        # ...then someone turns watch on through this replica, and the next message lands on the other.
        watch(server, slack)
        r = other_slack.message(channel="C0ACME", user=CUSTOMER, text="SSO for contractors pls 🙏",
                                ts="1800000000.000300")
        assert r.status_code == 200
        other.settle()
        server.settle()
        other_slack.close()
    finally:
        other.stop()
    assert [rec["text"] for rec in export(db)] == ["SSO for contractors pls 🙏"]


# --- message subtypes in a watched channel ------------------------------------------------------


def from_schema(name: str, **event: Any) -> dict[str, Any]:
    """java-slack-sdk's schema sample (every key, every value empty) filled in like a real delivery."""
    body = load(name)
    ev = {k: v for k, v in body["event"].items() if v not in ("", None, [], {}) and k not in ("blocks", "attachments")}
    for k in ("root", "message", "previous_message", "bot_profile", "files", "edited", "icons"):
        ev.pop(k, None)
    event.setdefault("ts", f"18000{uuid.uuid4().int % 10**5:05d}.000100")
    ev.update(channel="C0ACME", channel_type="channel", event_ts=event["ts"], team=TEAM, **event)
    body.update(type="event_callback", token="deprecated", api_app_id="A0001", team_id=TEAM, enterprise_id=None,
                event_id=f"Ev{uuid.uuid4().hex[:10].upper()}", event_time=1800000000, event_context="4-x", event=ev,
                authorizations=[{"enterprise_id": None, "team_id": TEAM, "user_id": "UBOT", "is_bot": True,
                                 "is_enterprise_install": False}])
    return body


SUBTYPES = {  # schema sample -> (fields a real one carries, captured by watch?)
    "schema_MessagePayload.json": ({"user": CUSTOMER, "text": "Plain: dark mode <3"}, True),
    "schema_MessageMePayload.json": ({"user": CUSTOMER, "text": "is desperate for SCIM & SSO"}, True),
    "schema_MessageFileSharePayload.json": ({"user": CUSTOMER, "text": "Screenshot of the broken export",
                                             "files": [{"id": "F1", "title": "export.png"}]}, True),
    "schema_MessageThreadBroadcastPayload.json": ({"user": CUSTOMER, "text": "Also sent to channel: +1",
                                                   "thread_ts": "1700000000.000100"}, False),
    "schema_MessageBotPayload.json": ({"bot_id": "B0OTHER", "text": "Deploy finished"}, False),
    "schema_MessageChannelJoinPayload.json": ({"user": REP, "text": "<@U0REP> has joined the channel"}, False),
    "schema_MessageChannelLeavePayload.json": ({"user": REP, "text": "<@U0REP> has left the channel"}, False),
    "schema_MessageChannelTopicPayload.json": ({"user": REP, "text": "set the channel topic: Q3"}, False),
    "schema_MessageChannelPurposePayload.json": ({"user": REP, "text": "set the channel purpose: Acme"}, False),
    "schema_MessageChannelNamePayload.json": ({"user": REP, "text": "renamed the channel"}, False),
    "schema_MessageChannelArchivePayload.json": ({"user": REP, "text": "archived the channel"}, False),
    "schema_MessageChannelUnarchivePayload.json": ({"user": REP, "text": "un-archived the channel"}, False),
    "schema_MessageChannelPostingPermissionsPayload.json": ({"user": REP, "text": "changed who can post"}, False),
    "schema_MessageGroupTopicPayload.json": ({"user": REP, "text": "set the topic"}, False),
    "schema_MessageEkmAccessDeniedPayload.json": ({"user": "UREVOKED", "text": "Your admins revoked access"}, False),
    "schema_MessageRepliedPayload.json": ({"hidden": True}, False),
}


def test_every_message_subtype_in_a_watched_channel(server, slack, fake, db):
    watch(server, slack)
    for name, (fields, _) in SUBTYPES.items():
        assert slack.json_body(from_schema(name, **fields)).status_code == 200, name
    server.settle()
    captured = {rec["text"] for rec in export(db)}
    expected = {("Screenshot of the broken export" if "FileShare" in name else fields["text"])
                for name, (fields, kept) in SUBTYPES.items() if kept}
    assert captured == expected


def test_thread_broadcast_is_left_to_reactions(server, slack, fake, db):
    watch(server, slack)
    recorded = load("grid_thread_broadcast.json")  # "Hi there!", a reply also sent to the channel
    body = from_schema("schema_MessageThreadBroadcastPayload.json", **{
        k: recorded["event"][k] for k in ("text", "thread_ts", "ts", "root")}, user=CUSTOMER)
    slack.json_body(body)
    server.settle()
    assert export(db) == []
    # Anyone who thinks it is feedback tags it: captured, with its thread.
    parent = fake.add_message("C0ACME", "Write in the thread :bow:", user=CUSTOMER,
                              ts=recorded["event"]["thread_ts"])
    ts = fake.add_message("C0ACME", "Hi there!", user=CUSTOMER, ts=recorded["event"]["ts"], thread_ts=parent)
    slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bulb")
    server.settle()
    [rec] = export(db)
    assert rec["text"] == "Hi there!" and rec["source"] == "reaction"


# --- the words of a blocks-only message -----------------------------------------------------------


@pytest.fixture
def named(fake):
    fake.add_user("W12345678", "kaz", display_name="kaz", real_name="Kaz Sato")
    fake.add_channel("C123456678", "platform-feedback")


def test_reaction_on_a_blocks_only_message_stores_its_words_not_the_placeholder(server, slack, fake, db, named):
    # Slack's text for a message with rich text only is a placeholder; the words are in the blocks
    # (recorded messages from java-slack-sdk's BlockKitTest).
    blocks = load("rich_text_message_mentions.json")["blocks"] + load("rich_text_message_lists.json")["blocks"]
    ts = fake.add_message("C0ACME", PLACEHOLDER, user=CUSTOMER, blocks=blocks)
    slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bulb")
    server.settle()
    [rec] = export(db)
    assert rec["text"] == (
        "@channel test aaaa\n#platform-feedback\ntest\nhttp://www.example.com\n@kaz\n"
        "@kaz\n• test\n• aaaa\n\n1. foo\n2. bar\n3. baz\n> something important\n"
        "```\npackage example\n\nclass Foo\n```\n\nbold something italic")
    # The confirmation quotes those words (escaped), never the placeholder.
    fake.wait_until(lambda: fake.ephemerals(user=REP))
    assert PLACEHOLDER not in json.dumps(fake.ephemerals(user=REP))


def test_an_attachment_only_message_stores_the_attachment(server, slack, fake, db):
    recorded = load("placeholder_block_actions.json")["message"]  # a bot's "This content can't be displayed."
    ts = fake.add_message("C0ACME", recorded["text"], user=CUSTOMER, attachments=[
        {"fallback": "[ticket] #4821", "title": "Ticket #4821: CSV export > 10k rows fails",
         "text": "Customer: Acme & Co", "fields": [{"title": "Priority", "value": "P1 🔥"}]}])
    slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bug")
    server.settle()
    [rec] = export(db)
    assert rec["text"] == "Ticket #4821: CSV export > 10k rows fails\nCustomer: Acme & Co\nPriority: P1 🔥"


def test_edit_of_a_watched_message_into_blocks_only_keeps_words(server, slack, fake, db, named):
    watch(server, slack)
    slack.message(channel="C0ACME", user=CUSTOMER, text="first words", ts="1800000000.000500")
    server.settle()
    slack.event({"type": "message", "subtype": "message_changed", "channel": "C0ACME", "hidden": True,
                 "ts": "1800000001.000000", "event_ts": "1800000001.000000", "channel_type": "channel",
                 "message": {"type": "message", "user": CUSTOMER, "ts": "1800000000.000500", "text": PLACEHOLDER,
                             "blocks": load("rich_text_message_styles.json")["blocks"], "edited": {"user": CUSTOMER}},
                 "previous_message": {"type": "message", "user": CUSTOMER, "ts": "1800000000.000500",
                                      "text": "first words"}})
    server.settle()
    [rec] = export(db)
    # The recording names its emoji without their code points, as Slack's own text does (":sparkles:").
    assert rec["text"] == ("This is a rich text message that uses italics and strikethrough and looks :sparkles: "
                           "fabulous :sparkles:")


# --- the renderer alone -------------------------------------------------------------------------


def test_every_rich_text_element_reads_as_words():
    from bot.slack.richtext import blocks_text

    names = {"U03E94MK0": "kaz", "CHE2DUW5V": "feedback", "SKAQ0Q1NW": "sales-team"}
    text = blocks_text(load("rich_text_elements.json")["blocks"], names=names.get)
    assert text == ("2009-02-13with a link (https://slack.com/)we are near the end:basketball:#F405B3"
                    "T03E94MJU@kaz@sales-team@here#feedback")


def test_unknown_names_fall_back_to_slacks_own_notation_and_sections_blocks_are_read():
    from bot.slack.richtext import blocks_text

    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "Renewal risk"}},
              {"type": "section", "text": {"type": "mrkdwn", "text": "Acme wants *SAML* & SCIM"},
               "fields": [{"type": "mrkdwn", "text": "ARR: $120k"}]},
              {"type": "context", "elements": [{"type": "mrkdwn", "text": "from <@U0CUST>"},
                                               {"type": "image", "image_url": "https://x/y.png", "alt_text": "logo"}]},
              {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [
                  {"type": "user", "user_id": "U0NOBODY"}, {"type": "text", "text": " in "},
                  {"type": "channel", "channel_id": "C0NOWHERE"}, {"type": "emoji", "name": "tada", "unicode": "1f389"},
                  {"type": "link", "url": "https://acme.example/ticket?id=1&x=<2>"}]}]},
              {"type": "divider"}, {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text",
                                                                                                "text": "Open"}}]}]
    assert blocks_text(blocks) == ("Renewal risk\nAcme wants *SAML* & SCIM\nARR: $120k\nfrom <@U0CUST>\n"
                                   "<@U0NOBODY> in <#C0NOWHERE>🎉https://acme.example/ticket?id=1&x=<2>")
