"""Per-channel settings: watch mode and the customer account a channel belongs to."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bot.core.common import insert_ignore
from bot.core.models import Channel


def get_channel(session: Session, *, team_id: str, channel_id: str) -> Channel | None:
    return session.scalar(select(Channel).where(Channel.team_id == team_id, Channel.channel_id == channel_id))


def ensure_channel(session: Session, *, team_id: str, channel_id: str, name: str | None = None) -> Channel:
    insert_ignore(session, Channel, {"team_id": team_id, "channel_id": channel_id, "name": name,
                                     "is_private": channel_id.startswith("G"), "watched": False,
                                     "archived": False},
                  conflict=["team_id", "channel_id"])
    ch = get_channel(session, team_id=team_id, channel_id=channel_id)
    assert ch is not None
    if name and ch.name != name:
        ch.name = name
    return ch


def set_watch(session: Session, *, team_id: str, channel_id: str, watched: bool, by: str,
              name: str | None = None) -> bool:
    """Turn automatic capture on or off. Returns whether anything changed."""
    ch = ensure_channel(session, team_id=team_id, channel_id=channel_id, name=name)
    changed = ch.watched != watched
    ch.watched = watched
    ch.watched_by = by if watched else ch.watched_by
    return changed


def set_account(session: Session, *, team_id: str, channel_id: str, customer: str, arr: float | None,
                name: str | None = None) -> Channel:
    ch = ensure_channel(session, team_id=team_id, channel_id=channel_id, name=name)
    ch.customer = customer.strip()[:255]
    ch.customer_arr = arr
    return ch


# Whether watch mode is on for a channel, archived or not (its messages come back on unarchive): one row
# by its unique key (uq_channels_team_channel), bound by name (team_id, channel_id).
WATCHED_FLAG = select(Channel.watched).where(Channel.team_id == bindparam("team_id"),
                                             Channel.channel_id == bindparam("channel_id"))


def mark_archived(session: Session, *, team_id: str, channel_id: str, archived: bool = True) -> None:
    ch = ensure_channel(session, team_id=team_id, channel_id=channel_id)
    ch.archived = archived
