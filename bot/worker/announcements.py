"""Worker side of subscriptions and announcements: /subscribe (needs the Web API), and registrations.

The fan-out itself is the delivery loop (bot/worker/delivery.py), started from bot.runtime.BACKGROUND.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot import hooks
from bot.exports import EXPORTERS
from bot.runtime import Runtime, periodic
from bot.services import announcements as an_svc
from bot.services import subscriptions as sub_svc
from bot.slack.render import feedback as fb_render
from bot.slack.render.text import escape
from bot.worker.channels import ensure_member
from bot.worker.core import JobContext, handler
from bot.worker.home import HOME_HOOKS
from bot.worker.notify import send_response

log = logging.getLogger(__name__)


def is_announcer(ctx: JobContext, user: str) -> bool:
    if user in ctx.settings.announcers:
        return True
    try:
        info = ctx.client().users_info(user=user).get("user") or {}
    except SlackApiError:
        return False
    return an_svc.may_announce(info, user, ctx.settings.announcers)


def _answer(ctx: JobContext, p: dict[str, Any], text: str, mrkdwn: str | None = None) -> None:
    msg = fb_render.ephemeral(text, mrkdwn)
    send_response(ctx, {"response_url": p.get("response_url"), "user": p["user"], "text": msg["text"],
                        "blocks": msg.get("blocks")})


@handler("subscriptions.subscribe")
def subscribe(ctx: JobContext, p: dict[str, Any]) -> None:
    """Join the channel (or explain how to invite us), then record the subscriptions and answer."""
    team, channel, user, text = ctx.team_id or "", p["channel"], p["user"], p["text"]
    with ctx.db.read_session() as s:
        unknown = sub_svc.unknown_areas(s, team_id=team, text=text)
    may_create = not unknown or is_announcer(ctx, user)
    ok, why = ensure_member(ctx, channel)
    if not ok:
        _answer(ctx, p, why)  # nothing recorded until we can post there
        return

    def write(s: Session) -> tuple[sub_svc.SubscribeResult, list[str]]:
        res = sub_svc.subscribe(s, team_id=team, channel_id=channel, text=text, by=user, may_create=may_create)
        return res, [a.label for a in sub_svc.known_areas(s, team_id=team)]

    with ctx.db.session() as s:
        res, known = write(s)
    _answer(ctx, p, *subscribe_answer(res, known))


def subscribe_answer(res: sub_svc.SubscribeResult, known: list[str]) -> tuple[str, str]:
    """(plain text, mrkdwn): the same sentences; area names are the users' words, escaped in mrkdwn."""

    def lines(strong: Any, em: Any, show: Any) -> list[str]:
        out = []
        if res.added:
            out.append("Subscribed this channel to " + ", ".join(strong(a) for a in res.added)
                       + ": announcements about them will be posted here.")
        if res.created:
            out.append("New product area" + ("s" if len(res.created) > 1 else "") + ": "
                       + ", ".join(show(a) for a in res.created) + ".")
        if res.already:
            out.append("Already subscribed to " + ", ".join(show(a) for a in res.already) + ".")
        if res.unknown:
            out.append("Unknown product area" + ("s" if len(res.unknown) > 1 else "") + ": "
                       + ", ".join(em(a) for a in res.unknown)
                       + ". Only admins and announcers create new areas. Known areas: "
                       + (", ".join(show(a) for a in known) or "none yet") + ".")
        return out

    same = str  # plain text shows the names as typed; ephemeral() escapes it as a whole
    plain = " ".join(lines(same, same, same))
    mrkdwn = "\n".join(lines(lambda a: f"*{escape(a)}*", lambda a: f"_{escape(a)}_", escape))
    return plain, mrkdwn


def _home(session: Session, data: Any, team_id: str, user_id: str) -> None:
    items = an_svc.recent_by_author(session, team_id=team_id, author=user_id)
    if items:
        data.extra["announcements"] = items


def _channel_gone(session: Session, team_id: str, channel: str, reason: str) -> None:
    sub_svc.deactivate_channel(session, team_id, channel, reason)


HOME_HOOKS.append(_home)
hooks.channel_gone.append(_channel_gone)
EXPORTERS["announcements"] = (an_svc.EXPORT_FIELDS, lambda s, all_: an_svc.export_announcements(s, all_))


@periodic("prune-view-grants", 3600)
def prune_view_grants(rt: Runtime) -> None:
    """Expired announce grants are worth nothing; the table holds the last GRANT_TTL's worth."""
    with rt.db.session() as s:
        an_svc.purge_grants(s)
