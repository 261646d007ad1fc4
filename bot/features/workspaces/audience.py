"""Asking Slack, after the ack, whether a person is outside the installing organisation and whether a
channel is shared with another one; answers are kept in the database for a while (bot/core/audience.py).

Transient Slack errors are raised (the job is retried); anything else means Slack can't vouch for the
person or channel, and the answer is the safe one: outside, shared. See docs/slack-connect.md.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.core import audience as rules
from bot.core import clock
from bot.core.db import Database
from bot.queue.core import JobContext, Jobs, TransientError, classify, slack_error

log = logging.getLogger(__name__)
jobs = Jobs()  # this module's job handlers and event routes, collected by bot/composition.py


def home_of(ctx: JobContext) -> rules.Home:
    ident = ctx.slack.identity(ctx.team_id)
    return rules.Home(team_id=str(ident.get("team_id") or ctx.team_id or ""), enterprise_id=ident.get("enterprise_id"))


def _ask(call: Any) -> Any:
    """The Web API answer, None when Slack refuses for good (the caller fails closed), raises when transient."""
    try:
        return call()
    except SlackApiError as e:
        if isinstance(classify(e), TransientError):
            raise
        log.info("Slack can't vouch (%s): treated as outside / shared", slack_error(e))
        return None


def person_outside(ctx: JobContext, user: str, *, user_team: str | None = None) -> bool:
    """Is `user` outside the installing organisation? The payload's own word first, then the cache, then
    users.info."""
    home = home_of(ctx)
    said = rules.outside_by_team(user_team, home)
    if said is not None:
        return said
    now = clock.now()
    with ctx.db.read_session() as s:
        known = rules.cached(s, team_id=home.team_id, kind=rules.USER, object_id=user, now=now)
    if known is not None:
        return known
    resp = _ask(lambda: ctx.client().users_info(user=user))
    outside = resp is None or rules.outside_by_user_info(resp.get("user") or {}, home)
    with ctx.db.session() as w:
        rules.remember(w, team_id=home.team_id, kind=rules.USER, object_id=user, external=outside, now=now)
    return outside


def channel_shared(ctx: JobContext, channel: str | None, *, fresh: bool = False) -> bool:
    """Is `channel` shared with another organisation (or being shared)? `fresh` asks Slack regardless of
    the cache (a digest, at post time)."""
    return is_shared(ctx.db, ctx.client(), ctx.team_id or "", channel, fresh=fresh)


def is_shared(db: Database, client: Any, team: str, channel: str | None, *, fresh: bool = False) -> bool:
    if not channel:
        return False
    now = clock.now()
    if not fresh:
        with db.read_session() as s:
            known = rules.cached(s, team_id=team, kind=rules.CHANNEL, object_id=channel, now=now)
        if known is not None:
            return known
    resp = _ask(lambda: client.conversations_info(channel=channel))
    if resp is None:
        return True  # not remembered: an invitation into the channel may change the answer
    shared = rules.shared_by_channel_info(resp.get("channel") or {})
    with db.session() as w:
        rules.remember(w, team_id=team, kind=rules.CHANNEL, object_id=channel, external=shared, now=now)
    return shared


def note_channel(ctx: JobContext, channel: str, shared: bool) -> None:
    with ctx.db.session() as w:
        rules.remember(w, team_id=ctx.team_id or "", kind=rules.CHANNEL, object_id=channel, external=shared,
                       now=clock.now())


@jobs.handler("audience.check")
def check_person(ctx: JobContext, p: dict[str, Any]) -> None:
    """Warm the cache for someone the edge could not place at ack time (a Grid sibling workspace)."""
    person_outside(ctx, p["user"], user_team=p.get("user_team"))


@jobs.on_event("channel_shared")
def channel_was_shared(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    note_channel(ctx, event["channel"], True)


@jobs.on_event("channel_unshared")
def channel_was_unshared(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    # Still shared with someone else unless Slack says otherwise.
    note_channel(ctx, event["channel"], bool(event.get("is_ext_shared", True)))
