"""Slack Connect rules: who is outside the installing organisation, which channels are shared with it.

What Slack puts in each payload, and why each rule below reads it so, is in docs/slack-connect.md.
Everything here fails closed: a person or channel Slack can't vouch for is treated as outside/shared,
because the cost of a mistake that way is a shorter message, and the other way a leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.common import insert_ignore
from bot.core.models import AudienceCheck

# How long an answer from users.info / conversations.info is trusted. People rarely change
# organisation; channels get shared and unshared more often, and channel_shared/channel_unshared
# events refresh the answer at once anyway. Digests ask Slack afresh at post time regardless.
PERSON_TTL = timedelta(hours=6)
CHANNEL_TTL = timedelta(minutes=10)
USER, CHANNEL = "user", "channel"


@dataclass(frozen=True)
class Home:
    """The installing organisation: the workspace the app is installed in, and its Enterprise Grid org."""

    team_id: str
    enterprise_id: str | None = None


def outside_by_team(user_team: str | None, home: Home) -> bool | None:
    """A payload's word on the person's own workspace (interactivity `user.team_id`, events `user_team`)
    -> True (outside), False (inside) or None (Slack must be asked: another workspace of a Grid org)."""
    if not user_team:
        return None
    if user_team == home.team_id or (home.enterprise_id and user_team == home.enterprise_id):
        return False
    if user_team.startswith("E"):
        return True  # events name a Grid person's organisation: not ours
    if not home.enterprise_id:
        return True  # a workspace outside Grid is an organisation of its own
    return None  # maybe a sibling workspace of our Grid organisation: users.info says


def outside_by_user_info(user: dict[str, Any], home: Home) -> bool:
    """users.info's `user` object -> is this person outside the installing organisation?"""
    enterprise = (user.get("enterprise_user") or {}).get("enterprise_id") or user.get("enterprise_id")
    if home.enterprise_id and enterprise == home.enterprise_id:
        return False  # any workspace of our own Grid organisation
    if user.get("is_stranger"):
        return True
    team = user.get("team_id") or (user.get("profile") or {}).get("team")
    return team != home.team_id  # no team at all: can't tell, so outside


def shared_by_channel_info(channel: dict[str, Any]) -> bool:
    """conversations.info's `channel` object -> is it shared with another organisation (or about to be)?

    `is_org_shared` alone (shared between workspaces of one Grid organisation) stays inside; `is_shared`
    without either flag can't be told apart, so it counts as shared."""
    if channel.get("is_ext_shared") or channel.get("is_pending_ext_shared"):
        return True
    return bool(channel.get("is_shared")) and not channel.get("is_org_shared")


# --- the cache ---------------------------------------------------------------------------------------


def cached(session: Session, *, team_id: str, kind: str, object_id: str, now: datetime) -> bool | None:
    """The remembered answer if it is fresh enough, else None."""
    row = session.execute(select(AudienceCheck.external, AudienceCheck.checked_at).where(
        AudienceCheck.team_id == team_id, AudienceCheck.kind == kind, AudienceCheck.object_id == object_id)).first()
    if row is None:
        return None
    ttl = PERSON_TTL if kind == USER else CHANNEL_TTL
    return bool(row.external) if now - row.checked_at < ttl else None


def remember(session: Session, *, team_id: str, kind: str, object_id: str, external: bool, now: datetime) -> None:
    if not insert_ignore(session, AudienceCheck, {"team_id": team_id, "kind": kind, "object_id": object_id,
                                                  "external": external, "checked_at": now},
                         conflict=["team_id", "kind", "object_id"]):
        session.execute(update(AudienceCheck).where(
            AudienceCheck.team_id == team_id, AudienceCheck.kind == kind, AudienceCheck.object_id == object_id)
            .values(external=external, checked_at=now))
