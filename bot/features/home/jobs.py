"""Publishes App Home when a person opens it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from bot.features.home.render import home_view
from bot.features.home.service import HomeData, home_data
from bot.features.workspaces.audience import person_outside
from bot.queue.core import JobContext, Jobs
from bot.slack.render.connect import home_for_outsider

log = logging.getLogger(__name__)

# A feature's part of App Home: fn(session, data, team_id, user_id) enriches the home data (themes,
# acks, decision flags). The composition root (bot/composition.py) hands the list to home.jobs().
HomeSection = Callable[[Session, HomeData, str, str], None]


def jobs(sections: Sequence[HomeSection]) -> Jobs:
    """App Home's handler and route, publishing the Home with these features' sections."""
    out = Jobs()
    sections = tuple(sections)

    @out.on_event("app_home_opened")
    def home_opened(ctx: JobContext, event: dict[str, Any], env: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            publish_home(ctx, env["team_id"], event["user"], sections, user_team=event.get("user_team"))

    @out.handler("home.publish")
    def home_publish(ctx: JobContext, p: dict[str, Any]) -> None:
        publish_home(ctx, ctx.team_id or "", p["user"], sections, user_team=p.get("user_team"))

    return out


def publish_home(ctx: JobContext, team_id: str, user_id: str, sections: Sequence[HomeSection], *,
                 user_team: str | None = None) -> None:
    if person_outside(ctx, user_id, user_team=user_team):
        # Counts, themes, decisions and subscriptions are all the organisation's own business.
        ctx.client().views_publish(user_id=user_id, view=home_for_outsider())
        return
    with ctx.db.read_session() as s:
        data = home_data(s, team_id=team_id, user_id=user_id)
        for fn in sections:
            try:
                fn(s, data, team_id, user_id)
            except Exception:  # one feature's extra must not cost the person their whole Home tab
                log.exception("home hook %s failed", getattr(fn, "__name__", fn))
    ctx.client().views_publish(user_id=user_id, view=home_view(data))

