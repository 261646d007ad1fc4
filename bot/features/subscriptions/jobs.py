"""Worker side of /subscribe: joins the channel (needs the Web API), records the subscriptions, answers."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot.features.announcements import service as an_svc
from bot.features.feedback import render as fb_render
from bot.features.subscriptions import service as sub_svc
from bot.features.workspaces.membership import ensure_member
from bot.features.workspaces.notify import send_response
from bot.queue.core import JobContext, Jobs
from bot.slack.render.text import escape

log = logging.getLogger(__name__)
jobs = Jobs()  # this module's job handlers and event routes, collected by bot/composition.py


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


@jobs.handler("subscriptions.subscribe")
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

