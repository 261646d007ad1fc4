"""`/feedback TEXT` captured a commit at a time (bot/features/feedback/service.py capture_command_texts):
what a person sees in the confirmation and what lands in the database, on both databases."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import func, select

from bot.core import channels as channel_svc
from bot.core.common import job_row
from bot.core.groupcommit import GroupCommitter
from bot.core.models import Feedback, FeedbackVote, Job
from bot.features.feedback import service as fb_svc

HOOK = "https://hooks.slack.com/commands/T0001/1/abc"


def cmd(text: str, *, key: str, channel: str = "C0SALES", user: str = "U0REP", suggest: bool = True,
        response_url: str | None = HOOK) -> fb_svc.CommandText:
    return fb_svc.CommandText(team_id="T0001", channel=channel, user=user, text=text, request_key=key,
                              suggest=suggest, response_url=response_url)


def test_one_commit_of_captures_items_votes_accounts_and_duplicate_checks(db):
    with db.session() as s:
        channel_svc.set_account(s, team_id="T0001", channel_id="C0ACME", customer="Acme & Söhne <GmbH>", arr=120_000.0)
    with db.write_session() as s:
        first = fb_svc.capture_command_texts(s, [cmd("  SSO via Okta drops sessions <!channel>  ", key="t1")])
    assert first[0]["created"] and first[0]["text"] == "SSO via Okta drops sessions <!channel>"

    batch = [
        cmd("Export to CSV times out for >10k rows 🙃", key="t2", channel="C0ACME", user="U0SALES"),
        cmd("Export to CSV times out for >10k rows 🙃", key="t2", channel="C0ACME", user="U0SALES"),  # double click
        cmd("SSO via Okta drops sessions <!channel>", key="t1"),  # Slack's retry of an earlier commit
        cmd("Dark mode pls — our NOC works nights", key="t3", user="U0GUEST", suggest=False, response_url=None),
        cmd("Webhook retries lose the \"event\" field", key="t4", response_url=None),
    ]
    with db.write_session() as s:
        out = fb_svc.capture_command_texts(s, batch)

    assert [o["created"] for o in out] == [True, False, False, True, True]
    assert out[0]["id"] == out[1]["id"] and out[2]["id"] == first[0]["id"]
    assert len({o["id"] for o in out}) == 4
    assert (out[0]["customer"], out[0]["arr"]) == ("Acme & Söhne <GmbH>", 120_000.0) == (out[1]["customer"], out[1]["arr"])
    assert (out[3]["customer"], out[3]["arr"]) == (None, None)
    assert all(o["votes"] == 1 for o in out)

    with db.session() as s:
        items = {f.id: f for f in s.scalars(select(Feedback))}
        assert len(items) == 4
        acme = items[out[0]["id"]]
        assert (acme.customer, acme.arr, acme.channel, acme.reporter, acme.captured_by, acme.source) == (
            "Acme & Söhne <GmbH>", 120_000.0, "C0ACME", "U0SALES", "U0SALES", "command")
        assert acme.text == "Export to CSV times out for >10k rows 🙃" and acme.status == "active"
        votes = s.execute(select(FeedbackVote.feedback_id, FeedbackVote.user_id, FeedbackVote.via)).all()
        assert sorted(votes) == sorted((o["id"], u, "capture") for o, u in
                                       ((first[0], "U0REP"), (out[0], "U0SALES"), (out[3], "U0GUEST"), (out[4], "U0REP")))
        checks = {j.key: j for j in s.scalars(select(Job).where(Job.kind == "feedback.similar"))}
        # One duplicate check per new item a person of the organisation typed (not for the guest's).
        assert set(checks) == {f"similar:{first[0]['id']}", f"similar:{out[0]['id']}", f"similar:{out[4]['id']}"}
        assert checks[f"similar:{out[0]['id']}"].payload == {"feedback_id": out[0]["id"], "user": "U0SALES",
                                                             "channel": "C0ACME", "response_url": HOOK}
        assert checks[f"similar:{out[4]['id']}"].payload["response_url"] is None
        assert checks[f"similar:{out[4]['id']}"].status == "pending"
        assert s.scalar(select(func.count()).select_from(Job)) == 3


def test_captures_sent_together_through_the_writer_are_committed_and_each_answered(db):
    """Through the group committer, as the edge sends them: on PostgreSQL a commit of captures alone is
    one statement without BEGIN/COMMIT (bot/core/groupcommit.py), so this checks that what the
    callers were told is in the database for a fresh session to read, and that a commit mixing in
    another kind of write goes through too."""

    async def burst() -> tuple[list[dict], list[dict]]:
        writer = GroupCommitter(db)
        try:
            async def together(*writes):
                # The writer is held inside another unit while these queue, so they go out as one commit.
                gate = threading.Event()
                hold = asyncio.ensure_future(writer.run(lambda s: gate.wait(5)))
                await asyncio.sleep(0.05)
                queued = asyncio.gather(*writes)
                await asyncio.sleep(0.05)
                gate.set()
                await hold
                return await queued

            alone = list(await together(*(writer.run(cmd(f"Bulk edit of tags #{i} & <b>", key=f"b{i}"))
                                           for i in range(12))))
            mixed = await together(
                writer.run(cmd("Audit log export to S3 ✨", key="m1")),
                writer.insert(Job, job_row(key="ev:Ev0MIXED", kind="event", team_id="T0001", payload={"n": 1}),
                              conflict=("key",)),
                writer.run(cmd("Audit log export to S3 ✨", key="m1")))
            assert writer.commits == 4  # two holds, two bursts
            return alone, [mixed[0], mixed[2]]
        finally:
            writer.close()

    alone, mixed = asyncio.run(burst())
    assert all(o["created"] for o in alone) and len({o["id"] for o in alone}) == 12
    assert mixed[0]["created"] and not mixed[1]["created"] and mixed[0]["id"] == mixed[1]["id"]
    with db.read_session() as s:
        stored = {f.id: f.text for f in s.scalars(select(Feedback))}
        assert {o["id"]: o["text"] for o in alone + mixed} == stored
        assert s.scalar(select(func.count()).select_from(FeedbackVote)) == 13
        assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "feedback.similar")) == 13
        assert s.scalar(select(Job.key).where(Job.kind == "event")) == "ev:Ev0MIXED"
