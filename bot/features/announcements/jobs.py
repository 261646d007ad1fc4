"""Worker side of announcements: the author's recent announcements on App Home, and pruning expired
announce grants. The fan-out itself is the delivery loop (bot/features/announcements/delivery.py), a
background loop started by the runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from bot.features.announcements import service as an_svc

if TYPE_CHECKING:
    from bot.runtime import Runtime


def home_section(session: Session, data: Any, team_id: str, user_id: str) -> None:
    items = an_svc.recent_by_author(session, team_id=team_id, author=user_id)
    if items:
        data.extra["announcements"] = items


def prune_view_grants(rt: Runtime) -> None:
    """Expired announce grants are worth nothing; the table holds the last GRANT_TTL's worth."""
    with rt.db.session() as s:
        an_svc.purge_grants(s)
