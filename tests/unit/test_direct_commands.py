"""`/feedback TEXT` of a single-workspace install skips Bolt's dispatch (bot/slack/commands.py
`DirectCommands`): for each form it takes, the person gets the same answer, byte for byte once parsed, and
the database the same rows as through Bolt's own dispatch of Loopline's app; every other form of the
command, and every other request, is left to Bolt."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from sqlalchemy import select, text

from bot import composition
from bot.core.channels import set_account
from bot.core.groupcommit import GroupCommitter
from bot.core.models import Feedback, FeedbackVote, Job
from bot.slack.app import build_app, fixed_authorization
from bot.slack.commands import DirectCommands
from bot.slack.edge import Edge
from tests.support.env import wipe

IDENTITY = {"team_id": "T0001", "user_id": "U0BOT", "bot_id": "B0BOT", "enterprise_id": None}
FORM = "application/x-www-form-urlencoded"


def command(text: str, n: int, *, channel: str = "C0SALES", team: str = "T0001", user: str = "U0REP",
            name: str = "/feedback") -> bytes:
    return urlencode({"token": "x", "team_id": team, "team_domain": "acme", "channel_id": channel,
                      "channel_name": "sales", "user_id": user, "user_name": "rep", "command": name, "text": text,
                      "api_app_id": "A0001", "is_enterprise_install": "false",
                      "response_url": f"https://hooks.slack.com/commands/T0001/{n}/xyz",
                      "trigger_id": f"{n}.1790000000.abc{n:04d}"}).encode()


CAPTURES = [
    command("Export to CSV times out for >10k rows & the spinner never stops 🙃", 1),
    command("SSO via Okta drops sessions after 10 min — <!channel> blocking renewal", 2, channel="C0ACME"),
    command('the "payload" field is missing from webhook retries <@U0CUST>', 3),
    command("Dark mode pls; our NOC team works nights", 4, team="T0OTHER", user="U0GUEST"),  # not of the org
    command("Export to CSV times out for >10k rows & the spinner never stops 🙃", 1),  # Slack's retry
    command("account page times out whenever we open the billing tab on Safari 17, every single time, all week; "
            "the customer's admins can't download invoices", 5),  # long: feedback, though it starts like the subcommand
    command("   x" * 1200, 6),  # longer than any Block Kit text: cut, never rejected
]


@pytest.fixture
def edge(settings, db):
    writer = GroupCommitter(db)
    yield Edge(settings, db, writer)
    writer.close()


def start_over(db) -> None:
    wipe(db)
    with db.session() as s:
        set_account(s, team_id="T0001", channel_id="C0ACME", customer="Acme & Söhne <GmbH>", arr=120_000.0)
        if db.is_postgres:  # the same ids for both passes
            for table in ("feedback", "feedback_votes", "jobs"):
                s.execute(text(f"ALTER SEQUENCE {table}_id_seq RESTART WITH 1"))


def stored(db) -> dict[str, Any]:
    with db.read_session() as s:
        return {
            "feedback": [(f.id, f.source_key, f.text, f.customer, f.arr, f.channel, f.reporter, f.captured_by, f.source)
                         for f in s.scalars(select(Feedback).order_by(Feedback.id))],
            "votes": sorted(s.execute(select(FeedbackVote.feedback_id, FeedbackVote.user_id, FeedbackVote.via)).all()),
            "jobs": sorted((j.key, j.kind, json.dumps(j.payload, sort_keys=True)) for j in s.scalars(select(Job))),
        }


def test_direct_answers_and_stores_what_bolt_does(edge, db):
    app = build_app(edge, listeners=composition.listeners(composition.build_features()), bot_identity=IDENTITY,
                    request_verification=False)
    direct = DirectCommands(fixed_authorization("xoxb-test", IDENTITY),
                            composition.direct_commands(composition.build_features(), edge))

    async def through_bolt() -> list[tuple[int, str, Any]]:
        out = []
        for body in CAPTURES:
            r = await app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers={"content-type": [FORM]}))
            out.append((r.status, r.headers["content-type"][0], json.loads(r.body)))
        return out

    async def through_direct() -> list[tuple[int, str, Any]]:
        out = []
        for body in CAPTURES:
            taken = direct.take(body, FORM)
            assert taken is not None, body
            r = await direct.handle(taken)
            assert r is not None
            out.append((r.status, r.headers["content-type"][0], json.loads(r.body)))
        return out

    start_over(db)
    by_bolt, bolt_rows = asyncio.run(through_bolt()), stored(db)
    start_over(db)
    by_direct, direct_rows = asyncio.run(through_direct()), stored(db)

    assert by_direct == by_bolt
    assert direct_rows == bolt_rows
    # What the person sees: each capture confirmed privately with its id, the retry answered with the first id.
    answers = [body for _, _, body in by_bolt]
    assert all(a["response_type"] == "ephemeral" and a["blocks"] for a in answers)
    assert "FB-1" in answers[0]["text"] and "FB-1" in answers[4]["text"]
    assert "&lt;!channel&gt;" in json.dumps(answers[1]) and "<!channel>" not in json.dumps(answers[1])
    assert len(bolt_rows["feedback"]) == 6 and bolt_rows["feedback"][1][3:5] == ("Acme & Söhne <GmbH>", 120_000.0)
    # Duplicate checks for people of the organisation only (not the guest's capture).
    assert {k for k, _, _ in bolt_rows["jobs"]} == {f"similar:{f[0]}" for f in bolt_rows["feedback"] if f[6] != "U0GUEST"}
    assert len(bolt_rows["jobs"]) == 5


def test_a_failing_capture_gets_the_apps_error_answer(edge, db):
    direct = DirectCommands(fixed_authorization("xoxb-test", IDENTITY),
                            composition.direct_commands(composition.build_features(), edge))
    edge.writer.close()  # the database writer is gone: nothing can be stored
    taken = direct.take(CAPTURES[0], FORM)
    r = asyncio.run(direct.handle(taken))
    assert r is not None and r.status == 200
    answer = json.loads(r.body)
    assert answer["response_type"] == "ephemeral" and "Something went wrong on our side (reference" in answer["text"]


@pytest.mark.parametrize(("body", "content_type"), [
    (command("", 1), FORM),  # opens the modal (views.open after the ack)
    (command("watch", 2), FORM),
    (command("help", 3), FORM),
    (command("search okta logout", 4), FORM),
    (command("customer Acme", 5), FORM),
    (command("account Acme Corp 120k", 6), FORM),
    (command("account", 7), FORM),  # usage
    (command("Ship it", 8, name="/decision"), FORM),  # no direct handler
    (b"ssl_check=1&token=x", FORM),
    (b"payload=%7B%22type%22%3A%22block_actions%22%7D", FORM),
    (b'{"type": "event_callback", "event": {"type": "reaction_added"}}', "application/json"),
    (b"command=%2Ffeedback&text=\xff\xfe", FORM),  # not UTF-8
])
def test_what_the_direct_path_leaves_to_bolt(edge, body, content_type):
    direct = DirectCommands(fixed_authorization("xoxb-test", IDENTITY),
                            composition.direct_commands(composition.build_features(), edge))
    taken = direct.take(body, content_type)
    assert taken is None or asyncio.run(direct.handle(taken)) is None
    with edge.db.read_session() as s:
        assert s.scalars(select(Feedback)).first() is None
