"""Workspace and channel lifecycle: uninstalls, revoked tokens, archived or deleted channels."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bot.core import channels as channel_svc
from bot.core import workspaces as ws_svc
from bot.features import ChannelGone
from bot.queue.core import JobContext, Jobs

log = logging.getLogger(__name__)
jobs = Jobs()  # this module's job handlers and event routes, collected by bot/composition.py


@jobs.on_event("app_uninstalled")
@jobs.on_event("tokens_revoked")
def uninstalled(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    """What was queued for a workspace that removed Loopline is abandoned, with the reason.

    The installation itself was deleted at the edge, before the ack (bot/slack/events.py), so
    nothing new is queued for it; jobs already queued would only fail one by one against a dead token.
    """
    etype = event.get("type", "")
    if etype == "tokens_revoked" and not (event.get("tokens") or {}).get("bot"):
        return  # people's own tokens only: Loopline works with the bot token
    installation = env.get("installation") or {"enterprise_id": None, "team_id": env.get("team_id")}
    with ctx.db.session() as s:
        teams = ws_svc.served_by(s, enterprise_id=installation.get("enterprise_id"),
                                 team_id=installation.get("team_id"))
        n = ws_svc.abandon_jobs(s, team_ids=teams, except_id=ctx.job_id,
                                reason=f"{etype}: workspace {', '.join(teams)} removed Loopline before this ran")
    log.warning("%s for %s (workspaces %s): %d queued job(s) abandoned", etype,
                installation.get("enterprise_id") or installation.get("team_id"), ", ".join(teams) or "none", n)


def channel_gone_routes(on_gone: Sequence[ChannelGone]) -> Jobs:
    """Archived or deleted channels: marked archived, and each feature told (subscriptions go inactive)."""
    out = Jobs()
    on_gone = tuple(on_gone)

    @out.on_event("channel_archive")
    @out.on_event("group_archive")
    @out.on_event("channel_deleted")
    @out.on_event("group_deleted")
    def channel_gone(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
        channel = event.get("channel")
        if isinstance(channel, dict):
            channel = channel.get("id")
        if not channel:
            return
        with ctx.db.session() as s:
            channel_svc.mark_archived(s, team_id=env["team_id"], channel_id=channel, archived=True)
            for fn in on_gone:
                fn(s, env["team_id"], channel, event.get("type", ""))

    return out


@jobs.on_event("channel_unarchive")
@jobs.on_event("group_unarchive")
def channel_back(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    if event.get("channel"):
        with ctx.db.session() as s:
            channel_svc.mark_archived(s, team_id=env["team_id"], channel_id=event["channel"], archived=False)


@jobs.on_event("member_joined_channel")
def member_joined(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    """Nothing to do yet; subscribed so that an invite of the bot is seen (and not 404'd)."""

