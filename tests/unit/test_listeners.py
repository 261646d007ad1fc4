"""Listeners are methods registered explicitly, small enough to call on their own; work right after the
ack goes through one path (Edge.ack_then), never Bolt's lazy listeners."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import composition
from bot.core.groupcommit import GroupCommitter
from bot.core.models import Job
from bot.features.digests import schedules
from bot.features.digests.listeners import DigestListeners
from bot.features.feedback.find_listeners import FindListeners
from bot.features.feedback.listeners import FeedbackListeners
from bot.features.feedback.merge_listeners import MergeListeners
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


def test_show_reads_the_schedule_it_was_given(edge, db, pinned_clock):
    with db.session() as s:
        schedules.save_schedule(s, team_id="T0001", channel="C0PRODUCT", cadence="weekly", weekday=0,
                                at_time="09:00", timezone="Europe/Berlin", areas=["Billing & <invoices>"], by="U0PM")
    text = DigestListeners(edge).show("T0001", "C0PRODUCT")["text"]
    # The first Monday 09:00 in Berlin after the pinned clock, whatever date it is pinned to.
    local = pinned_clock.astimezone(ZoneInfo("Europe/Berlin"))
    nine = local.replace(hour=9, minute=0, second=0, microsecond=0)
    monday = nine + timedelta(days=(-local.weekday()) % 7)
    if monday <= local:
        monday += timedelta(days=7)
    assert "every Monday at 09:00 (Europe/Berlin)" in text and f"Next one: Mon {monday.day} {monday:%b} 09:00" in text
    assert "&lt;invoices&gt;" in text  # the area is the users' words: escaped


def test_the_feedback_command_answers_help_in_the_ack_alone(edge):
    ack = Ack()
    asyncio.run(FeedbackListeners(edge).feedback_command(ack, _command("help"), client=None, context=None))
    [answer] = ack.calls
    assert answer["response_type"] == "ephemeral" and "Here is what /feedback can do." in answer["text"]


def _click(value: str, *, user_team: str = "T0001") -> dict[str, Any]:
    return {"type": "block_actions", "team": {"id": "T0001"}, "user": {"id": "U0PM", "team_id": user_team},
            "response_url": "https://hooks.slack.com/actions/T0001/1/x",
            "actions": [{"action_id": "x", "value": value, "action_ts": "1700000000.1"}]}


def _jobs(db) -> list[tuple[str, str]]:
    with db.session() as s:
        return [(j.kind, j.key) for j in s.scalars(select(Job))]


@pytest.mark.parametrize("value", ["not json", '{"f": "x", "i": 2}', '{"i": 2}', "[1, 2]", ""])
def test_a_forged_merge_button_is_acked_and_changes_nothing(edge, db, value):
    ack = Ack()
    on = MergeListeners(edge, on_links_moved=lambda *a, **k: None)
    for clicked in (on.merge_clicked, on.keep_separate_clicked, on.undo_clicked):
        asyncio.run(clicked(ack, _click(value), None))
    asyncio.run(FindListeners(edge).page_clicked(ack, _click(value), None))
    assert ack.calls == [{}] * 4 and _jobs(db) == []


def test_a_click_reads_the_value_only_for_people_inside(edge, db):
    read: list[str] = []
    click = asyncio.run(edge.click(Ack(), _click('{"f": 1}'), None, lambda v: read.append(v) or v))
    assert click is not None and (click.team, click.user, click.value) == ("T0001", "U0PM", '{"f": 1}')
    ack = Ack()
    assert asyncio.run(edge.click(ack, _click('{"f": 1}', user_team="T0OTHERORG"), None, read.append)) is None
    assert read == ['{"f": 1}'] and ack.calls == [{}]  # the outsider's value was never read
    assert [kind for kind, _ in _jobs(db)] == ["notify.respond"]  # told privately, after the ack


def test_the_duplicate_check_is_queued_in_the_captures_own_commit(edge, db):
    """A `/feedback TEXT` ack promises the item and its duplicate check: both are in the database by the
    time the ack is sent, in one commit (a crash just after the ack loses neither)."""
    async def capture() -> tuple[list[dict[str, Any]], list[str]]:
        ack = Ack()
        await FeedbackListeners(edge).feedback_command(
            ack, _command("Okta SSO logs everyone out after 10 min — \"session expired\" <!here> & again"),
            client=None, context={})
        # Nothing else may run on the loop before this read: the ack has been given.
        with db.read_session() as s:
            return ack.calls, list(s.scalars(select(Job.kind)))

    calls, kinds = asyncio.run(capture())
    [answer] = calls
    assert "FB-" in answer["text"]
    assert kinds == ["feedback.similar"]
    assert edge.writer.commits == 1
