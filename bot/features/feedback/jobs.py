"""Feedback work after the ack: reactions, watched channels, edits, deletions, permalinks."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot.core import channels as channel_svc
from bot.core.common import enqueue, queue_private
from bot.features.feedback import merging, render
from bot.features.feedback import service as fb_svc
from bot.features.workspaces.audience import channel_shared, person_outside
from bot.features.workspaces.membership import ensure_member
from bot.queue.core import JobContext, Jobs, slack_error
from bot.slack.richtext import (
    Names,
    attachments_text,
    base_reaction,
    blocks_text,
    is_placeholder,
    mentioned_ids,
)

log = logging.getLogger(__name__)
jobs = Jobs()  # this module's job handlers and event routes, collected by bot/composition.py


def message_text(msg: dict[str, Any], names: Names | None = None) -> str:
    """A message's words: its text; when that is empty or Slack's placeholder for a blocks-only message,
    its blocks, then its attachments, then its files' titles; else a note that it has none."""
    text = (msg.get("text") or "").strip()
    if not is_placeholder(text):
        return text
    words = (blocks_text(msg.get("blocks"), names=names or _unknown)
             or attachments_text(msg.get("attachments"), names=names or _unknown))
    if words:
        return words
    files = [f.get("title") or f.get("name") or "" for f in msg.get("files") or []]
    return "\n".join(f for f in files if f) or "(message without text)"


def _unknown(_: str) -> str | None:
    return None


def words_of(ctx: JobContext, msg: dict[str, Any]) -> str:
    """message_text, with the people and channels its rich text mentions shown by name ("@kaz")."""
    if not is_placeholder(msg.get("text")):
        return message_text(msg)
    blocks = list(msg.get("blocks") or []) + [b for a in msg.get("attachments") or [] for b in a.get("blocks") or []]
    names: dict[str, str | None] = {}
    for mid in mentioned_ids(blocks):
        names[mid] = _name_of(ctx, mid)
    return message_text(msg, names.get)


def _name_of(ctx: JobContext, mid: str) -> str | None:
    """A display name for a mention; None (Slack's own `<@U1>` notation is kept) when Slack won't say."""
    try:
        if mid[:1] in ("U", "W"):
            user = ctx.client().users_info(user=mid).get("user") or {}
            profile = user.get("profile") or {}
            return profile.get("display_name") or user.get("real_name") or user.get("name") or None
        if mid[:1] in ("C", "G"):
            return (ctx.client().conversations_info(channel=mid).get("channel") or {}).get("name") or None
    except (SlackApiError, OSError):
        log.info("no name for %s; keeping its id", mid)
    return None  # user groups and teams: no scope to read them, the id stays


def tagged_from_outside(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> bool:
    """A reaction by someone outside the organisation, in a channel shared with theirs, is their own
    emoji, not a tag: only the organisation's people tag feedback (docs/slack-connect.md). Only a shared
    channel can hold outsiders; Slack says so in the envelope, and when it doesn't, we ask."""
    shared = env.get("is_ext_shared_channel")
    if shared is None:
        shared = channel_shared(ctx, event["item"]["channel"])
    if shared and person_outside(ctx, event["user"], user_team=event.get("user_team")):
        log.info("reaction by someone outside the organisation: not a tag")
        return True
    return False


@jobs.on_event("reaction_added")
def reaction_added(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    """Store the capture and the vote at once, with no Web API call: a Slack outage must not keep an
    acked reaction from being saved. The message's text and permalink are fetched by its own job."""
    team = env["team_id"]
    channel, ts = event["item"]["channel"], event["item"]["ts"]
    reaction = base_reaction(event["reaction"])
    kind = ctx.settings.reactions.get(reaction)
    if kind is None or tagged_from_outside(ctx, event, env):
        return
    user = event["user"]
    with ctx.db.session() as s:
        item, created = fb_svc.capture_feedback(
            s, team_id=team, source="reaction", source_key=fb_svc.message_key(team, channel, ts), text="",
            text_pending=True, channel=channel, ts=ts, reporter=event.get("item_user"), captured_by=None, kind=kind)
        new_vote = fb_svc.add_vote(s, feedback_id=item.id, user_id=user, via=f"reaction:{reaction}")
        if created:
            item.captured_by = user
        needs_fetch = item.text_pending or not item.permalink
        if not (created or new_vote or needs_fetch):
            return
        why = {"feedback_id": item.id, "channel": channel, "ts": ts, "user": user, "kind": kind,
               "event_id": env["event_id"], "created": created, "new_vote": new_vote}
        if needs_fetch:
            enqueue(s, key=f"fetch:{env['event_id']}", kind="feedback.fetch", team_id=team, payload=why)
        else:
            _confirm(s, item, why)


def _confirm(s: Session, item: Any, why: dict[str, Any]) -> None:
    """The reactor's private confirmation (once per event), sent when the item shows its text."""
    if not (why["created"] or why["new_vote"]):
        return
    s.refresh(item, ["votes"])
    text, blocks = render.capture_confirmation(render.summary_of(item), created=why["created"],
                                               new_vote=why["new_vote"],
                                               via=f" ({render.KIND_LABELS.get(why['kind'], why['kind']).lower()})")
    queue_private(s, key=f"confirm:{why['event_id']}", team_id=item.team_id, channel=why["channel"],
                  user=why["user"], text=text, blocks=blocks)
    if why["created"]:
        merging.queue_suggestion(s, team_id=item.team_id, feedback_id=item.id, user=why["user"],
                                 channel=why["channel"])


def _text_not_fetched(s: Session, ctx: JobContext, why: dict[str, Any], error: str) -> None:
    """The fetch gave up (a day of Slack errors, or no access): the item stays, and the reactor hears
    that its text is missing and how to fill it in, instead of waiting for a confirmation forever."""
    item = fb_svc.get_feedback(s, why["feedback_id"], team_id=ctx.team_id or "")
    if item is None or not (why["created"] or why["new_vote"]):
        return
    s.refresh(item, ["votes"])
    text, blocks = render.text_not_fetched(render.summary_of(item), channel=why["channel"], created=why["created"])
    queue_private(s, key=f"confirm:{why['event_id']}", team_id=item.team_id, channel=why["channel"],
                  user=why["user"], text=text, blocks=blocks)


@jobs.handler("feedback.fetch", on_failure=_text_not_fetched)
def fetch_reacted_message(ctx: JobContext, why: dict[str, Any]) -> None:
    """Fill a reaction's item with the message's text and permalink, then confirm to the reactor.
    Slack errors go to the worker's retry policy (bot/queue/core.py RETRY)."""
    with ctx.db.read_session() as s:
        item = fb_svc.get_feedback(s, why["feedback_id"], team_id=ctx.team_id or "")
        if item is None:
            return
        needs_fetch = item.text_pending or not item.permalink
    msg: dict[str, Any] = {}
    if needs_fetch:
        try:
            msg = ctx.client().reactions_get(channel=why["channel"], timestamp=why["ts"], full=True).get("message") or {}
        except SlackApiError as e:
            if slack_error(e) != "message_not_found":
                raise
            log.info("reacted message is gone; its item is withdrawn")
            with ctx.db.session() as s:
                fb_svc.follow_delete(s, team_id=ctx.team_id or "", channel=why["channel"], ts=why["ts"])
            return
    # Names are looked up (for a blocks-only message) before the transaction: no Web API call holds it.
    words = words_of(ctx, msg) if msg else None
    with ctx.db.session() as s:
        filled = fb_svc.fill_from_slack(s, feedback_id=why["feedback_id"], text=words,
                                        permalink=msg.get("permalink"), reporter=msg.get("user"),
                                        thread_ts=msg.get("thread_ts"))
        if filled is not None:
            _confirm(s, filled, why)


@jobs.on_event("reaction_removed")
def reaction_removed(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    team = env["team_id"]
    channel, ts = event["item"]["channel"], event["item"]["ts"]
    reaction = base_reaction(event["reaction"])
    if reaction not in ctx.settings.reactions or tagged_from_outside(ctx, event, env):
        return
    user = event["user"]
    with ctx.db.session() as s:
        item = fb_svc.find_by_message(s, team_id=team, channel=channel, ts=ts)
        if item is None:
            return
        was_voter = any(v.user_id == user for v in item.votes)
        item = fb_svc.remove_vote(s, feedback_id=item.id, user_id=user, via=f"reaction:{reaction}")
        if item is None or not was_voter:
            return
        still_voter = any(v.user_id == user for v in item.votes)
        if item.status == "withdrawn" or not still_voter:
            text, blocks = render.vote_removed(render.summary_of(item))
            queue_private(s, key=f"confirm:{env['event_id']}", team_id=team, channel=channel, user=user,
                            text=text, blocks=blocks)


@jobs.on_event("message")
@jobs.on_event("message", "file_share")
@jobs.on_event("message", "me_message")  # "/me is thrilled": a person's own top-level words
def watched_message(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    team, channel, ts = env["team_id"], event["channel"], event["ts"]
    if event.get("bot_id") or (event.get("thread_ts") and event["thread_ts"] != ts):
        return
    text = words_of(ctx, event)
    with ctx.db.session() as s:
        ch = channel_svc.get_channel(s, team_id=team, channel_id=channel)
        if ch is None or not ch.watched:
            return  # unwatched between the ack and now
        item, created = fb_svc.capture_feedback(
            s, team_id=team, source="watch", source_key=fb_svc.message_key(team, channel, ts),
            text=text, channel=channel, ts=ts, reporter=event.get("user"))
        if created:
            enqueue(s, key=f"enrich:{item.id}", kind="feedback.enrich", team_id=team,
                    payload={"feedback_id": item.id, "channel": channel, "ts": ts})


@jobs.on_event("message", "message_changed")
def source_edited(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    msg = event.get("message") or {}
    channel = event.get("channel")
    ts = msg.get("ts") or (event.get("previous_message") or {}).get("ts")
    if not channel or not ts:
        return
    with ctx.db.read_session() as s:
        if fb_svc.find_by_message(s, team_id=env["team_id"], channel=channel, ts=ts) is None:
            return  # not the source of anything captured
    text = words_of(ctx, msg)
    with ctx.db.session() as s:
        if msg.get("subtype") == "tombstone":  # a thread parent deleted while its replies live on
            fb_svc.follow_delete(s, team_id=env["team_id"], channel=channel, ts=ts)
        else:
            fb_svc.follow_edit(s, team_id=env["team_id"], channel=channel, ts=ts, text=text)


@jobs.on_event("message", "message_deleted")
def source_deleted(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    ts = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts")
    if event.get("channel") and ts:
        with ctx.db.session() as s:
            fb_svc.follow_delete(s, team_id=env["team_id"], channel=event["channel"], ts=ts)


@jobs.handler("feedback.enrich")
def enrich(ctx: JobContext, p: dict[str, Any]) -> None:
    """Replace a computed or missing permalink with Slack's own."""
    try:
        link = ctx.client().chat_getPermalink(channel=p["channel"], message_ts=p["ts"]).get("permalink")
    except SlackApiError as e:
        if slack_error(e) in ("message_not_found", "channel_not_found"):
            return
        raise
    with ctx.db.session() as s:
        fb_svc.fill_from_slack(s, feedback_id=p["feedback_id"], permalink=link)


@jobs.handler("channel.watch")
def join_watched(ctx: JobContext, p: dict[str, Any]) -> None:
    """The bot must be in a channel to hear its messages: join public ones, explain private ones."""

    ok, reason = ensure_member(ctx, p["channel"])
    if ok:
        return
    with ctx.db.session() as s:
        channel_svc.set_watch(s, team_id=ctx.team_id or "", channel_id=p["channel"], watched=False, by=p["user"])
        enqueue(s, key=f"watchfail:{ctx.key}", kind="notify.respond", team_id=ctx.team_id,
                payload={"response_url": p.get("response_url"), "user": p["user"], "text": reason,
                         "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": reason}}]})
