"""Publishes App Home when a person opens it."""

from __future__ import annotations

import logging
from typing import Any

from bot.services.home import home_data
from bot.slack.render.connect import home_for_outsider
from bot.slack.render.home import home_view
from bot.worker.audience import person_outside
from bot.worker.core import JobContext, handler
from bot.worker.events import on_event

# Features add fn(session, data, team_id, user_id) to enrich the home data (themes, acks...).
HOME_HOOKS: list[Any] = []

log = logging.getLogger(__name__)


def publish_home(ctx: JobContext, team_id: str, user_id: str, *, user_team: str | None = None) -> None:
    if person_outside(ctx, user_id, user_team=user_team):
        # Counts, themes, decisions and subscriptions are all the organisation's own business.
        ctx.client().views_publish(user_id=user_id, view=home_for_outsider())
        return
    with ctx.db.read_session() as s:
        data = home_data(s, team_id=team_id, user_id=user_id)
        for fn in HOME_HOOKS:
            try:
                fn(s, data, team_id, user_id)
            except Exception:  # one feature's extra must not cost the person their whole Home tab
                log.exception("home hook %s failed", getattr(fn, "__name__", fn))
    ctx.client().views_publish(user_id=user_id, view=home_view(data))


@on_event("app_home_opened")
def home_opened(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
    if event.get("tab", "home") == "home":
        publish_home(ctx, env["team_id"], event["user"], user_team=event.get("user_team"))


@handler("home.publish")
def home_publish(ctx: JobContext, p: dict[str, Any]) -> None:
    publish_home(ctx, ctx.team_id or "", p["user"], user_team=p.get("user_team"))
