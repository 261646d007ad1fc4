"""Decision jobs: post and refresh the card, apply status changes (with the permission check that
needs users.info), thread notes, the loop-closing DMs and the replies people choose to post.

Each handler re-reads the database first, so a job that runs twice (lease expired, retry) finds the
work already recorded and does nothing visible again.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.common import is_workspace_admin, queue_private
from bot.core.models import Announcement, Decision, Feedback, Job, LoopNotification
from bot.core.settings import Settings, get_settings
from bot.features.decisions import render
from bot.features.decisions import service as svc
from bot.features.workspaces.audience import channel_shared, person_outside
from bot.features.workspaces.membership import ensure_member
from bot.queue.core import JobContext, Jobs, PermanentError, TransientError, classify
from bot.queue.postonce import mark_attempt, post_once

log = logging.getLogger(__name__)
jobs = Jobs()  # this module's job handlers and event routes, collected by bot/composition.py


def _summary(s: Session, d: Decision) -> render.DecisionSummary:
    permalinks = dict(s.execute(select(Feedback.id, Feedback.permalink).where(Feedback.id.in_(d.feedback_ids))).all()) \
        if d.feedback_ids else {}
    return render.summary_of(d, permalinks)  # type: ignore[arg-type]


def _flags(d: Decision, now: datetime, stale_days: int) -> tuple[str, ...]:
    flags = []
    if svc.is_overdue(d, now.date()):
        flags.append("overdue")
    if svc.is_stale(d, now, stale_days):
        flags.append("stale")
    return tuple(flags)


def _card_parts(ctx: JobContext, s: Session, d: Decision) -> tuple[render.DecisionSummary, tuple[str, ...]]:
    return _summary(s, d), _flags(d, clock.now(), ctx.settings.loopline_stale_days)


def _card(ctx: JobContext, parts: tuple[render.DecisionSummary, tuple[str, ...]],
          channel: str | None) -> tuple[str, list[dict[str, Any]]]:
    """The card for `channel`: in one shared with another organisation, without the linked feedback
    (other customers' words and links into internal channels). Asked outside any open session."""
    summary, flags = parts
    shared = bool(channel) and str(channel)[:1] in "CG" and channel_shared(ctx, channel)
    return render.card(summary, flags=flags, shared=shared)


CARD_KEY, NOTE_KEY, LOOP_DM_KEY, LOOP_REPLY_KEY = ("loopline_decision_card", "loopline_decision_note",
                                                  "loopline_loop_dm", "loopline_loop_reply")


@jobs.handler("decision.post")
def post_card(ctx: JobContext, p: dict[str, Any]) -> None:
    with ctx.db.read_session() as s:
        d = s.get(Decision, p["decision_id"])
        if d is None:
            return
        if d.ts:  # already posted (the job ran before): only bring it up to date
            refresh_card(ctx, p)
            return
        channel, author = d.channel, p.get("author") or d.created_by or ""
        parts = _card_parts(ctx, s, d)
        summary = parts[0]
    target = channel
    if not channel or channel.startswith("D"):
        target = author  # logged from a DM: the card goes to the author's DM with the bot
    else:
        ok, hint = ensure_member(ctx, channel)
        if not ok:
            msg_text, msg_blocks = render.cannot_post(summary, channel, hint)
            with ctx.db.session() as w:
                queue_private(w, team_id=ctx.team_id, key=f"decision.cannot_post:{d.id}", user=author, text=msg_text, blocks=msg_blocks)
            return
    text, blocks = _card(ctx, parts, target)
    started = mark_attempt(ctx.db, Decision, d.id)
    posted = post_once(ctx.client(), channel=target or "", key_type=CARD_KEY, key=str(d.id), started=started, text=text,
                       blocks=blocks, unfurl_links=False)
    with ctx.db.session() as w:
        dec = w.get(Decision, p["decision_id"])
        if dec is not None:
            dec.channel, dec.ts = posted.channel, posted.ts
    if posted.adopted:  # the earlier attempt's card shows the state of then
        refresh_card(ctx, p)


@jobs.handler("decision.card")
def refresh_card(ctx: JobContext, p: dict[str, Any]) -> None:
    with ctx.db.read_session() as s:
        d = s.get(Decision, p["decision_id"])
        if d is None or not d.ts or not d.channel:
            return  # not posted yet: the post job renders the current state
        channel, ts = d.channel, d.ts
        parts = _card_parts(ctx, s, d)
    text, blocks = _card(ctx, parts, channel)
    ctx.client().chat_update(channel=channel, ts=ts, text=text, blocks=blocks)


def _card_pending(s: Session, decision_id: int) -> bool:
    return s.scalar(select(Job.id).where(Job.key == f"decision.post:{decision_id}", Job.status == "pending")) \
        is not None


@jobs.handler("decision.note")
def thread_note(ctx: JobContext, p: dict[str, Any]) -> None:
    with ctx.db.read_session() as s:
        d = s.get(Decision, p["decision_id"])
        if d is None:
            return
        if not d.ts:
            if _card_pending(s, d.id):
                raise TransientError("card not posted yet")
            return  # the card could not be posted: there is no thread
        channel, ts, created = d.channel, d.ts, d.created_at
    text = render.status_note(by=p["by"], from_status=p.get("from"), to_status=p["to"])
    # The job's attempt counter is the durable mark: a second run may follow a note that landed.
    post_once(ctx.client(), channel=channel or "", key_type=NOTE_KEY, key=ctx.key, thread_ts=ts,
              started=created if ctx.attempts > 1 else None, text=text, unfurl_links=False)


def _is_admin(ctx: JobContext, user: str) -> bool:
    info = ctx.client().users_info(user=user).get("user") or {}
    return is_workspace_admin(info)


@jobs.handler("decision.status")
def change_status(ctx: JobContext, p: dict[str, Any]) -> None:
    team, user, key = ctx.team_id or "", p["user"], p["request_key"]
    with ctx.db.read_session() as s:
        d = svc.get_decision(s, p["decision_id"], team_id=team)
        if d is None:
            return
        is_owner = user == d.owner
        summary = _summary(s, d)
        channel = p.get("channel") or d.channel
    # The owner needs no API call; anyone else must be a workspace admin or owner.
    allowed = svc.may_change(d, user, is_admin=False) if is_owner else svc.may_change(d, user, is_admin=_is_admin(ctx, user))
    with ctx.db.session() as w:
        if not allowed:
            text, blocks = render.refusal(summary)
            queue_private(w, key=f"decision.refused:{key}", team_id=team, channel=channel, user=user, text=text,
                          blocks=blocks)
            return
        result = svc.apply_status_change(w, team_id=team, decision_id=d.id, status=p["status"], by=user, key=key)
    log.info("decision status %s", "changed" if result.changed else f"unchanged ({result.reason})",
             extra={"decision": f"D-{d.id}", "user": user, "status": p["status"]})


# --- closing the loop ---------------------------------------------------------------------------


def _loop_message(s: Session, n: LoopNotification) -> tuple[render.DecisionSummary, list[render.LoopItem],
                                                           str, str | None] | None:
    d = s.get(Decision, n.decision_id)
    if d is None:
        return None
    items = [render.LoopItem(fb.id, fb.text, fb.permalink, bool(fb.channel and fb.ts), fb.channel)
             for fb in s.scalars(select(Feedback).where(Feedback.id.in_(n.feedback_ids or [])).order_by(Feedback.id))]
    outcome = svc.trigger_outcome(n.trigger)
    announcement = n.trigger.split(":", 1)[1] if ":" in n.trigger else None
    if announcement:
        ann = s.get(Announcement, int(announcement.split("-")[-1])) if announcement.split("-")[-1].isdigit() else None
        if ann is not None:
            announcement = f"{announcement}: {ann.title}"
    return _summary(s, d), items, outcome, announcement


def _with_sharing(ctx: JobContext, items: list[render.LoopItem]) -> list[render.LoopItem]:
    """Marks the items whose thread is in a channel shared with another organisation."""
    return [replace(i, shared=channel_shared(ctx, i.channel)) if i.can_reply else i for i in items]


@jobs.handler("loop.notify")
def loop_notify(ctx: JobContext, p: dict[str, Any]) -> None:
    with ctx.db.read_session() as s:
        n = s.get(LoopNotification, p["notification_id"])
        if n is None or n.status == "sent":
            return  # exactly once: a second run finds the DM recorded
        parts = _loop_message(s, n)
        if parts is None:
            return
        summary, items, outcome, announcement = parts
        user, nid = n.user_id, n.id
    if person_outside(ctx, user):
        # The customer who said it hears back from the people who work with them, not from an internal
        # decision log: the capturer's DM offers to reply in their thread (docs/slack-connect.md).
        with ctx.db.session() as w:
            row = w.get(LoopNotification, nid)
            if row is not None:
                row.status, row.error = "skipped", "outside the organisation"
        return
    text, blocks = render.loop_dm(notification_id=nid, d=summary, outcome=outcome, announcement=announcement,
                                  items=_with_sharing(ctx, items))
    started = mark_attempt(ctx.db, LoopNotification, nid)
    try:
        posted = post_once(ctx.client(), channel=user, key_type=LOOP_DM_KEY, key=str(nid), started=started,
                           text=text, blocks=blocks, unfurl_links=False)
    except SlackApiError as e:
        err = classify(e)
        if isinstance(err, PermanentError):  # e.g. a deactivated person: record it, don't retry
            with ctx.db.session() as w:
                row = w.get(LoopNotification, nid)
                if row is not None:
                    row.status, row.error = "failed", str(err)[:255]
            return
        raise
    with ctx.db.session() as w:
        row = w.get(LoopNotification, nid)
        if row is not None:
            row.status, row.channel, row.ts = "sent", posted.channel, posted.ts


def _replied(n: LoopNotification) -> set[int]:
    return {int(f) for f, r in (n.replies or {}).items() if f.isdigit() and (r or {}).get("ts")}


def _begin_reply(ctx: JobContext, nid: int, fid: int) -> dict[str, Any] | None:
    """Record that a reply about `fid` is being attempted; returns the earlier record, if any.

    The record lives on the notification, not in the job queue: done jobs are pruned after 7 days and
    a click after that must still find that the thread was answered."""
    with ctx.db.session() as w:
        row = w.scalars(select(LoopNotification).where(LoopNotification.id == nid).with_for_update()).first()
        if row is None:
            return None
        replies = dict(row.replies or {})
        earlier = replies.get(str(fid))
        if earlier is None:
            replies[str(fid)] = {"at": clock.now().isoformat(), "ts": None}
            row.replies = replies  # a new dict: SQLAlchemy doesn't see in-place JSON changes
        return dict(earlier) if earlier else None


def _record_reply(ctx: JobContext, nid: int, fid: int, ts: str) -> None:
    with ctx.db.session() as w:
        row = w.scalars(select(LoopNotification).where(LoopNotification.id == nid).with_for_update()).first()
        if row is not None:
            replies = dict(row.replies or {})
            replies[str(fid)] = {**(replies.get(str(fid)) or {}), "ts": ts}
            row.replies = replies


@jobs.handler("loop.reply")
def loop_reply(ctx: JobContext, p: dict[str, Any]) -> None:
    """The person chose to tell the original thread; only now is anything posted there."""
    with ctx.db.read_session() as s:
        n = s.get(LoopNotification, p["notification_id"])
        fb = s.get(Feedback, p["feedback_id"])
        # The ids came from a button: only the person the DM was for, in its workspace, about its items.
        if n is None or fb is None or n.team_id != ctx.team_id or n.user_id != p["user"] \
                or fb.id not in (n.feedback_ids or []):
            return
        if not (fb.channel and fb.ts):
            return
        parts = _loop_message(s, n)
        if parts is None:
            return
        summary, items, outcome, announcement = parts
        already = fb.id in _replied(n)
        replied = _replied(n) | {fb.id}
        channel, thread_ts, fid, nid = fb.channel, fb.thread_ts or fb.ts, fb.id, n.id
    if not already:
        ok, hint = ensure_member(ctx, channel)
        if not ok:
            with ctx.db.session() as w:
                queue_private(w, team_id=ctx.team_id, key=f"loop.reply.failed:{nid}:{fid}", user=p["user"],
                    text=f"I couldn't reply in the thread of FB-{fid}: {hint}", blocks=[])
            return
        earlier = _begin_reply(ctx, nid, fid)
        if earlier and earlier.get("ts"):
            already = True  # another run recorded it in the meantime
        else:
            started = datetime.fromisoformat(earlier["at"]) if earlier and earlier.get("at") else None
            text = render.loop_thread_reply(d=summary, outcome=outcome, feedback_id=fid, by=p["user"])
            posted = post_once(ctx.client(), channel=channel, key_type=LOOP_REPLY_KEY, key=f"{nid}:{fid}",
                               thread_ts=thread_ts, started=started, text=text, unfurl_links=False)
            _record_reply(ctx, nid, fid, posted.ts)
    if p.get("dm_channel") and p.get("dm_ts"):
        # Also on a repeated click: the button becomes "replied" either way.
        dm_text, blocks = render.loop_dm(notification_id=nid, d=summary, outcome=outcome, announcement=announcement,
                                         items=_with_sharing(ctx, items))
        for f in sorted(replied):
            blocks = render.loop_replied(blocks, f)
        try:
            ctx.client().chat_update(channel=p["dm_channel"], ts=p["dm_ts"], text=dm_text, blocks=blocks)
        except SlackApiError as e:  # the reply is what mattered; a stale button is only cosmetic
            log.warning("could not update the loop DM: %s", e.response.get("error"))


# --- App Home: open decisions get overdue/stale markers -----------------------------------------


def _stale_days() -> int:
    try:

        return get_settings().loopline_stale_days
    except Exception:  # no environment (tests, CLI): the documented default
        return int(Settings.model_fields["loopline_stale_days"].default)


def home_flags(session: Session, data: Any, team_id: str, user_id: str) -> None:
    now, stale_days = clock.now(), _stale_days()
    for item in data.open_decisions:
        d = session.get(Decision, item["id"])
        if d is None:
            continue
        flags = _flags(d, now, stale_days)
        item["overdue"], item["stale"] = "overdue" in flags, "stale" in flags
        if flags:  # the home renderer prints the status as is; the markers ride along with it
            item["status"] = item["status"] + "".join(f" · :warning: {f}" for f in flags)
    data.extra["decision_flags"] = {i["id"]: [f for f in ("overdue", "stale") if i.get(f)] for i in data.open_decisions}
