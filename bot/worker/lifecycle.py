"""Workspace and channel lifecycle: uninstalls, revoked tokens, archived or deleted channels."""

from __future__ import annotations

import logging
from typing import Any

from bot import hooks
from bot.services import channels as channel_svc
from bot.worker.core import JobContext
from bot.worker.events import on_event

log = logging.getLogger(__name__)


@on_event("app_uninstalled")
@on_event("tokens_revoked")
def uninstalled(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    store = ctx.slack.installation_store
    if store is not None and event.get("type") == "app_uninstalled":
        store.delete_all(enterprise_id=None, team_id=env["team_id"])
    elif store is not None:
        for _ in (event.get("tokens") or {}).get("bot") or []:
            store.delete_bot(enterprise_id=None, team_id=env["team_id"])
    log.info("workspace %s: %s", env["team_id"], event.get("type"))


@on_event("channel_archive")
@on_event("group_archive")
@on_event("channel_deleted")
@on_event("group_deleted")
def channel_gone(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    channel = event.get("channel")
    if isinstance(channel, dict):
        channel = channel.get("id")
    if not channel:
        return
    with ctx.db.session() as s:
        channel_svc.mark_archived(s, team_id=env["team_id"], channel_id=channel, archived=True)
        for fn in hooks.channel_gone:
            fn(s, env["team_id"], channel, event.get("type", ""))


@on_event("channel_unarchive")
@on_event("group_unarchive")
def channel_back(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    if event.get("channel"):
        with ctx.db.session() as s:
            channel_svc.mark_archived(s, team_id=env["team_id"], channel_id=event["channel"], archived=False)


@on_event("member_joined_channel")
def member_joined(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    """Nothing to do yet; subscribed so that an invite of the bot is seen (and not 404'd)."""

