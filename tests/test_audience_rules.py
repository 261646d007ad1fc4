"""The Slack Connect rules on the shapes Slack sends (docs/slack-connect.md), and the outsider-safe renderers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.core import audience as rules
from bot.core import clock
from bot.devtools.fakeslack.blockkit import check_message_blocks, check_view
from bot.features.decisions import render as dec_render
from bot.features.feedback import render as fb_render
from bot.slack.render.connect import home_for_outsider

HOME = rules.Home("T0001")
GRID = rules.Home("T0001", "E0ORG")


@pytest.mark.parametrize(("user_team", "home", "outside"), [
    ("T0001", HOME, False),          # interactivity user.team_id: the installing workspace
    ("T0EXT", HOME, True),           # another workspace, and ours is not on Grid: another organisation
    (None, HOME, None),              # nothing said (reaction_added carries no team): ask Slack
    ("T0SIB", GRID, None),           # another workspace while we are on Grid: maybe a sibling, ask Slack
    ("E0ORG", GRID, False),          # events' user_team may be the person's Grid organisation: ours
    ("E0OTHER", GRID, True),         # ...or another one
    ("E0OTHER", HOME, True),
])
def test_payload_team(user_team, home, outside):
    assert rules.outside_by_team(user_team, home) is outside


def test_users_info_shapes():
    member = {"id": "U0REP", "team_id": "T0001", "is_admin": False, "profile": {"team": "T0001"}}
    assert rules.outside_by_user_info(member, HOME) is False
    # Slack Connect: a person of a foreign workspace carries is_stranger (true or false) and their own team_id.
    foreign = {"id": "U0CUST", "team_id": "T0EXT", "is_stranger": False, "profile": {"team": "T0EXT"}}
    assert rules.outside_by_user_info(foreign, HOME) is True
    assert rules.outside_by_user_info({**foreign, "is_stranger": True}, HOME) is True
    # Enterprise Grid (java-slack-sdk's users.info sample shape): another workspace, the same organisation.
    sibling = {"id": "W0SIB", "team_id": "T0SIB", "is_stranger": True,
               "enterprise_user": {"id": "W0SIB", "enterprise_id": "E0ORG", "teams": ["T0SIB"]}}
    assert rules.outside_by_user_info(sibling, GRID) is False
    assert rules.outside_by_user_info(sibling, HOME) is True  # we are not in that organisation
    other_org = {**sibling, "enterprise_user": {"id": "W0X", "enterprise_id": "E0OTHER", "teams": ["T0X"]}}
    assert rules.outside_by_user_info(other_org, GRID) is True
    # Nothing to go by: outside (fail closed).
    assert rules.outside_by_user_info({}, HOME) is True


@pytest.mark.parametrize(("channel", "shared"), [
    ({"id": "C1", "is_channel": True, "is_shared": False, "is_ext_shared": False, "is_org_shared": False}, False),
    ({"id": "C1", "is_shared": True, "is_ext_shared": True, "is_org_shared": False}, True),
    ({"id": "C1", "is_shared": False, "is_ext_shared": False, "is_pending_ext_shared": True}, True),
    ({"id": "C1", "is_shared": True, "is_ext_shared": False, "is_org_shared": True}, False),  # Grid-wide only
    ({"id": "C1", "is_shared": True}, True),  # shared, with whom unsaid: shared
    ({"id": "D1", "is_im": True, "is_org_shared": False}, False),
])
def test_conversations_info_shapes(channel, shared):
    assert rules.shared_by_channel_info(channel) is shared


def test_cache_answers_within_its_ttl_only(db):
    now = clock.now()
    with db.session() as s:
        rules.remember(s, team_id="T0001", kind=rules.USER, object_id="U0CUST", external=True, now=now)
        rules.remember(s, team_id="T0001", kind=rules.CHANNEL, object_id="C0ACME", external=True, now=now)
    with db.session() as s:  # a later answer replaces the earlier one
        rules.remember(s, team_id="T0001", kind=rules.CHANNEL, object_id="C0ACME", external=False, now=now)
    with db.read_session() as s:
        assert rules.cached(s, team_id="T0001", kind=rules.USER, object_id="U0CUST", now=now) is True
        assert rules.cached(s, team_id="T0001", kind=rules.CHANNEL, object_id="C0ACME", now=now) is False
        assert rules.cached(s, team_id="T0002", kind=rules.USER, object_id="U0CUST", now=now) is None
        later = now + rules.PERSON_TTL + timedelta(seconds=1)
        assert rules.cached(s, team_id="T0001", kind=rules.USER, object_id="U0CUST", now=later) is None
        assert rules.cached(s, team_id="T0001", kind=rules.CHANNEL, object_id="C0ACME",
                            now=now + rules.CHANNEL_TTL + timedelta(seconds=1)) is None


def test_outsider_confirmation_has_their_words_and_nothing_else():
    fb = fb_render.FeedbackSummary(id=12, text="SAML group sync <!here> & more", kind="idea", votes=7,
                                   area="identity", customer="Acme Corp", arr=120_000,
                                   permalink="https://example.slack.com/archives/C0ACME/p1")
    text, blocks = fb_render.capture_confirmation(fb, created=True, outsider=True)
    shown = json.dumps(blocks) + text
    assert "FB-12" in shown and "&lt;!here&gt;" in shown
    for word in ("Acme", "120", "ARR", "identity", "vote", "feedback_details", "feedback_link_decision"):
        assert word not in shown, word
    assert check_message_blocks(blocks) == []
    _, inside = fb_render.capture_confirmation(fb, created=True)
    assert "$120k ARR" in json.dumps(inside) and "feedback_details" in json.dumps(inside)


def test_card_in_shared_channel_keeps_what_the_author_wrote_and_drops_linked_feedback():
    d = dec_render.DecisionSummary(id=3, title="Ship SAML sync", status="decided", context="Asked by Acme",
                                   owner="U0PM", feedback=[dec_render.LinkedFeedback(
                                       9, "https://example.slack.com/archives/G0SECRET/p9")])
    _, blocks = dec_render.card(d, shared=True)
    shown = json.dumps(blocks)
    assert "Ship SAML sync" in shown and "Asked by Acme" in shown and "not shown" in shown
    assert "FB-9" not in shown and "G0SECRET" not in shown
    assert check_message_blocks(blocks) == []
    assert "FB-9" in json.dumps(dec_render.card(d)[1])


def test_reply_button_to_a_shared_thread_asks_first():
    d = dec_render.DecisionSummary(id=3, title="Ship SAML sync " * 30, status="decided")
    items = [dec_render.LoopItem(9, "x", None, True, "C0ACME", shared=True),
             dec_render.LoopItem(10, "y", None, True, "C0SALES", shared=False)]
    _, blocks = dec_render.loop_dm(notification_id=1, d=d, outcome="decided", announcement=None, items=items)
    assert check_message_blocks(blocks) == []
    buttons = {e["value"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}
    assert "outside your organisation" in buttons["1:9"]["confirm"]["text"]["text"]
    assert len(buttons["1:9"]["confirm"]["text"]["text"]) <= 300 and "confirm" not in buttons["1:10"]


def test_outsider_home_is_a_valid_view_with_no_data():
    view = home_for_outsider()
    assert check_view(view) == [] and "FB-" not in json.dumps(view)
