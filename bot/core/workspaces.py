"""Which installation serves a workspace, and the work left behind by a workspace that removed Loopline."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.models import Job, Workspace


def remember(session: Session, *, team_id: str, enterprise_id: str | None, is_enterprise_install: bool) -> None:
    """Record (or correct) the installation a workspace's requests are authorised with."""
    values = {"team_id": team_id, "enterprise_id": enterprise_id, "is_enterprise_install": is_enterprise_install,
              "updated_at": clock.now()}
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt: Any = dialect.insert(Workspace).values(**values)
    session.execute(stmt.on_conflict_do_update(index_elements=["team_id"], set_={
        k: stmt.excluded[k] for k in ("enterprise_id", "is_enterprise_install", "updated_at")}))


def installation_of(session: Session, *, team_id: str) -> tuple[str | None, bool] | None:
    """(enterprise_id, is_enterprise_install) of the installation serving the workspace, if one was seen."""
    row = session.execute(select(Workspace.enterprise_id, Workspace.is_enterprise_install)
                          .where(Workspace.team_id == team_id)).first()
    return (row[0], bool(row[1])) if row else None


def served_by(session: Session, *, enterprise_id: str | None, team_id: str | None) -> list[str]:
    """The workspaces an installation serves, as Slack names it in app_uninstalled / tokens_revoked: a
    workspace install names its workspace; an org-wide one names only its enterprise."""
    if team_id:
        return [team_id]
    if not enterprise_id:
        return []
    return list(session.scalars(select(Workspace.team_id).where(
        Workspace.enterprise_id == enterprise_id, Workspace.is_enterprise_install.is_(True))))


def abandon_jobs(session: Session, *, team_ids: list[str], reason: str, except_id: int | None = None) -> int:
    """Mark the workspaces' queued jobs abandoned (kept, with the reason): none of them can reach Slack."""
    if not team_ids:
        return 0
    q = update(Job).where(Job.status == "pending", Job.team_id.in_(team_ids))
    if except_id is not None:
        q = q.where(Job.id != except_id)
    result = session.execute(q.values(status="abandoned", error=reason[:500], locked_until=None,
                                      done_at=clock.now()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
