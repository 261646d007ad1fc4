"""Listeners are methods registered explicitly, small enough to call on their own; work right after the
ack goes through one path (Edge.ack_then), never Bolt's lazy listeners."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot import composition
from bot.core.groupcommit import GroupCommitter
from bot.features.digests import schedules
from bot.features.digests.listeners import DigestListeners
from bot.slack.app import build_app
from bot.slack.edge import Edge


@pytest.fixture
def edge(settings, db):
    writer = GroupCommitter(db)
    yield Edge(settings, db, writer)
    writer.close()


class Ack:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, **kw: Any) -> None:
        self.calls.append(kw)


def test_no_listener_is_a_bolt_lazy_listener(edge):
    app = build_app(edge, listeners=composition.listeners(composition.build_features()), bot_identity={}, request_verification=False)
    listeners = app._async_listeners  # Bolt keeps them here; each knows its lazy functions
    assert len(listeners) > 10
    assert [lst for lst in listeners if lst.lazy_functions] == []


def _command(text: str) -> dict[str, Any]:
    return {"team_id": "T0001", "channel_id": "C0PRODUCT", "user_id": "U0PM", "text": text,
            "trigger_id": "1337.42", "response_url": "https://hooks.slack.com/commands/T0001/1/x"}


@pytest.mark.parametrize(("text", "says"), [
    ("help", "Here is what /digest can do."),
    ("weekly someday 9am <!channel>", "is not a day of the week"),
    ("", "No digest is scheduled in this channel."),
])
def test_the_digest_command_answers_in_the_ack_alone(edge, text, says):
    ack = Ack()
    asyncio.run(DigestListeners(edge).digest_command(ack, _command(text), {}))
    [answer] = ack.calls
    assert answer["response_type"] == "ephemeral" and says in answer["text"]
    assert "<!channel>" not in answer["text"]  # the user's words are escaped on the way back


def test_show_reads_the_schedule_it_was_given(edge, db):
    with db.session() as s:
        schedules.save_schedule(s, team_id="T0001", channel="C0PRODUCT", cadence="weekly", weekday=0,
                                at_time="09:00", timezone="Europe/Berlin", areas=["Billing & <invoices>"], by="U0PM")
    text = DigestListeners(edge).show("T0001", "C0PRODUCT")["text"]
    assert "every Monday at 09:00 (Europe/Berlin)" in text and "Next one: Mon 15 Jun 09:00" in text
    assert "&lt;invoices&gt;" in text  # the area is the users' words: escaped
