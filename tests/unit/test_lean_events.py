"""Events of a single-workspace install skip Bolt's dispatch (bot/slack/events.py `LeanInbox`): for every
kind of envelope, what lands in the inbox is exactly what Bolt's own dispatch through Loopline's app writes,
self events included; what the lean path doesn't take is left to Bolt."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from sqlalchemy import delete, select

from bot import composition
from bot.core.channels import set_watch
from bot.core.groupcommit import GroupCommitter
from bot.core.models import Job
from bot.slack.app import build_app, fixed_authorization
from bot.slack.edge import Edge
from bot.slack.events import LeanInbox

IDENTITY = {"team_id": "T0001", "user_id": "U0BOT", "bot_id": "B0BOT", "enterprise_id": None}
WATCHED, QUIET = "C0WATCH", "C0QUIET"


def envelope(event: dict[str, Any], n: int, **extra: Any) -> dict[str, Any]:
    return {"token": "x", "team_id": "T0001", "api_app_id": "A0001", "type": "event_callback",
            "event_id": f"Ev0LEAN{n:04d}", "event_time": 1790000000 + n, "event": event,
            "authorizations": [{"team_id": "T0001", "user_id": "U0BOT", "is_bot": True}], **extra}


MESSY = "Export → CSV drops the \"ARR (€)\" column 🙃 <@U0CUST> & <!here>, see <https://acme.example/x|ticket>"
EVENTS = [
    {"type": "reaction_added", "user": "U0REP", "reaction": "bulb::skin-tone-3",
     "item": {"type": "message", "channel": "C0ACME", "ts": "1790000000.000100"}, "item_user": "U0CUST",
     "event_ts": "1790000001.000200"},
    # the bot's own reaction: Bolt ignores self events, so must the lean path
    {"type": "reaction_added", "user": "U0BOT", "reaction": "bulb",
     "item": {"type": "message", "channel": "C0ACME", "ts": "1790000000.000100"}, "event_ts": "1790000001.000300"},
    {"type": "reaction_removed", "user": "U0REP", "reaction": "thumbsup",
     "item": {"type": "message", "channel": "C0ACME", "ts": "1790000000.000100"}, "event_ts": "1790000001.000400"},
    {"type": "reaction_added", "user": "U0REP", "reaction": "bug", "item": {"type": "file", "file": "F0001"},
     "event_ts": "1790000001.000500"},
    {"type": "message", "user": "U0CUST", "text": MESSY, "channel": WATCHED, "channel_type": "channel",
     "ts": "1790000002.000100", "event_ts": "1790000002.000100", "team": "T0001"},
    {"type": "message", "user": "U0CUST", "text": MESSY, "channel": QUIET, "channel_type": "channel",
     "ts": "1790000002.000200", "event_ts": "1790000002.000200", "team": "T0001"},
    {"type": "message", "subtype": "bot_message", "bot_id": "B0BOT", "text": "Captured FB-12", "channel": WATCHED,
     "channel_type": "channel", "ts": "1790000002.000300", "event_ts": "1790000002.000300"},
    {"type": "message", "user": "U0CUST", "text": "reply in thread", "channel": WATCHED, "channel_type": "channel",
     "thread_ts": "1790000002.000100", "ts": "1790000002.000400", "event_ts": "1790000002.000400"},
    {"type": "message", "subtype": "message_changed", "channel": WATCHED, "channel_type": "channel",
     "message": {"type": "message", "user": "U0CUST", "text": MESSY + " (edited)", "ts": "1790000002.000100"},
     "previous_message": {"type": "message", "user": "U0CUST", "text": MESSY, "ts": "1790000002.000100"},
     "ts": "1790000003.000100", "event_ts": "1790000003.000100"},
    {"type": "message", "subtype": "message_deleted", "channel": WATCHED, "channel_type": "channel",
     "deleted_ts": "1790000002.000100", "previous_message": {"type": "message", "user": "U0CUST", "text": MESSY},
     "ts": "1790000003.000200", "event_ts": "1790000003.000200"},
    # the bot itself joining a channel is one of the self events Bolt keeps
    {"type": "member_joined_channel", "user": "U0BOT", "channel": "C0NEW", "channel_type": "C", "team": "T0001",
     "inviter": "U0ADMIN", "event_ts": "1790000004.000100"},
    {"type": "channel_shared", "connected_team_id": "T0OTHER", "channel": "C0ACME", "event_ts": "1790000004.000200"},
    {"type": "channel_archive", "channel": "C0ACME", "user": "U0ADMIN", "event_ts": "1790000004.000300"},
    {"type": "app_home_opened", "user": "U0PM", "channel": "D0PM", "tab": "home", "event_ts": "1790000004.000400"},
]


@pytest.fixture
def edge(settings, db):
    with db.session() as s:
        set_watch(s, team_id="T0001", channel_id=WATCHED, watched=True, by="U0PM")
    writer = GroupCommitter(db)
    yield Edge(settings, db, writer)
    writer.close()


def inbox(db) -> list[tuple[str, Any]]:
    with db.session() as s:
        rows = [(j.key, j.payload) for j in s.scalars(select(Job).order_by(Job.key))]
        s.execute(delete(Job))
    return rows


def test_the_lean_path_writes_what_bolt_writes(edge, db):
    app = build_app(edge, listeners=composition.listeners(composition.build_features()), bot_identity=IDENTITY,
                    request_verification=False)
    lean = LeanInbox(edge, fixed_authorization("xoxb-test", IDENTITY))
    bodies = [json.dumps(envelope(e, n, **({"is_ext_shared_channel": True} if n == 2 else {})))
              for n, e in enumerate(EVENTS)]

    async def through_bolt() -> list[int]:
        statuses = []
        for body in bodies:
            resp = await app.async_dispatch(AsyncBoltRequest(body=body, headers={"content-type": ["application/json"]}))
            statuses.append(resp.status)
        return statuses

    async def through_lean() -> None:
        for body in bodies:
            taken = lean.take(body.encode(), "application/json")
            assert taken is not None, body
            await lean.handle(copy.deepcopy(taken))

    assert asyncio.run(through_bolt()) == [200] * len(bodies)
    by_bolt = inbox(db)
    asyncio.run(through_lean())
    by_lean = inbox(db)
    assert by_lean == by_bolt
    kept = {key for key, _ in by_bolt}
    assert "ev:Ev0LEAN0000" in kept and "ev:Ev0LEAN0004" in kept and "ev:Ev0LEAN0010" in kept
    assert not kept & {"ev:Ev0LEAN0001", "ev:Ev0LEAN0005", "ev:Ev0LEAN0006", "ev:Ev0LEAN0007"}


@pytest.mark.parametrize(("body", "content_type"), [
    (b'{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}',
     "application/json"),
    (json.dumps(envelope({"type": "app_uninstalled"}, 1)).encode(), "application/json"),
    (json.dumps(envelope({"type": "tokens_revoked", "tokens": {"bot": ["U0BOT"]}}, 2)).encode(), "application/json"),
    (b"command=%2Ffeedback&text=hello&team_id=T0001", "application/x-www-form-urlencoded"),
    (b'payload=%7B%22type%22%3A%22block_actions%22%7D', "application/x-www-form-urlencoded"),
    (b'{"type": "event_callback", "event": ', "application/json"),
    (b'{"type": "event_callback", "event": "reaction_added"}', "application/json"),
    (b'["event_callback"]', "application/json"),
])
def test_what_the_lean_path_leaves_to_bolt(edge, body, content_type):
    assert LeanInbox(edge, fixed_authorization("xoxb-test", IDENTITY)).take(body, content_type) is None
