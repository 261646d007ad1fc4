"""Announcements: who may announce, the outbox rows they create, edit/retract/cancel, acks, export.

Sending is the delivery loop's job (bot/features/announcements/delivery.py); here are only the rules and the rows.
An announcement's Delivery rows are written in the same transaction as the announcement itself, one
per target channel (unique on announcement x channel), so a crash after the submit loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.common import (
    ServiceError,
    insert_ignore,
    insert_ignore_many,
    is_workspace_admin,
    normalise_area,
)
from bot.core.models import Acknowledgement, Announcement, Delivery, ViewGrant
from bot.features.subscriptions.service import channels_for_areas

EXPORT_FIELDS = ["id", "title", "body", "areas", "author", "status", "send_at", "deliveries"]
OPEN_DELIVERY = ("pending", "sending")
# A copy posted more than this after its send_at (the process was down, or the queue was long) is late.
LATE_AFTER = timedelta(minutes=2)
TITLE_MAX = 150  # a header block's limit
# How long the right to announce, checked with users.info when the modal opened, holds for its submission:
# long enough to write an announcement, short enough that a person demoted today can't use an old form.
GRANT_TTL = timedelta(hours=12)


def may_announce(user: dict[str, Any], user_id: str, announcers: set[str]) -> bool:
    """users.info's `user` object -> may this person announce? (admins, owners, LOOPLINE_ANNOUNCERS)."""
    if user_id in announcers:
        return True
    return is_workspace_admin(user)


def grant_announce(session: Session, *, team_id: str, user_id: str, view_key: str,
                   now: datetime | None = None) -> None:
    """Record that `user_id` may submit the announcement modal opened with external_id `view_key`."""
    now = now or clock.now()
    insert_ignore(session, ViewGrant, {"view_key": view_key, "team_id": team_id, "user_id": user_id,
                                       "purpose": "announce", "expires_at": now + GRANT_TTL, "created_at": now},
                  conflict=["view_key"])


def may_submit_announcement(session: Session, *, team_id: str, user_id: str, view_key: str | None,
                            now: datetime | None = None) -> bool:
    """On submit, without a Web API call: was this very form opened for this person, who was allowed then?"""
    if not view_key:
        return False
    return session.scalar(select(ViewGrant.id).where(
        ViewGrant.view_key == view_key, ViewGrant.team_id == team_id, ViewGrant.user_id == user_id,
        ViewGrant.purpose == "announce", ViewGrant.expires_at > (now or clock.now()))) is not None


def purge_grants(session: Session, now: datetime | None = None) -> int:
    r = session.execute(delete(ViewGrant).where(ViewGrant.expires_at <= (now or clock.now())))
    return int(r.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Created:
    id: int
    created: bool
    channels: list[str]
    scheduled: bool
    send_at: datetime


def create_announcement(session: Session, *, team_id: str, source_key: str, title: str, body: str,
                        areas: list[str], author: str, send_at: datetime | None = None,
                        decision_ids: list[int] | None = None, confirm_channel: str | None = None,
                        now: datetime | None = None) -> Created:
    """The announcement and one pending Delivery per subscribed channel; idempotent on `source_key`."""
    now = now or clock.now()
    title, body = title.strip(), body.strip()
    if not title:
        raise ServiceError("Give the announcement a title.")
    names = list(dict.fromkeys(normalise_area(a) for a in areas if normalise_area(a)))
    if not names:
        raise ServiceError("Choose at least one product area.")
    existing = session.scalars(select(Announcement).where(Announcement.source_key == source_key)).first()
    if existing is not None:  # the same modal submitted twice (double click, retried request)
        return Created(existing.id, False, [d.channel for d in existing.deliveries],
                       existing.status == "scheduled", existing.send_at)
    channels = channels_for_areas(session, team_id=team_id, areas=names)
    if not channels:
        raise ServiceError("No channel subscribes to these areas yet (`/subscribe AREA` in a channel first).")
    due = send_at if send_at and send_at > now else now
    scheduled = due > now
    ann = Announcement(team_id=team_id, source_key=source_key, title=title[:255], body=body, areas=names,
                       author=author, status="scheduled" if scheduled else "sending", send_at=due,
                       decision_ids=list(decision_ids or []), confirm_channel=confirm_channel,
                       created_at=now, updated_at=now)
    session.add(ann)
    session.flush()
    insert_ignore_many(session, Delivery, [
        {"announcement_id": ann.id, "team_id": team_id, "channel": channel, "status": "pending", "attempts": 0,
         "next_attempt_at": due, "version_sent": 0, "late": False, "ts": None, "error": None,
         "locked_until": None, "sent_at": None} for channel in channels], conflict=["announcement_id", "channel"])
    return Created(ann.id, True, channels, scheduled, due)


def get(session: Session, announcement_id: int, *, team_id: str, lock: bool = False) -> Announcement | None:
    """AN-n as seen from workspace `team_id` (ids come from buttons and forms: never trust them alone)."""
    ann = session.get(Announcement, announcement_id, with_for_update=lock)
    return ann if ann is not None and ann.team_id == team_id else None


def _check_owner(ann: Announcement | None, by: str, announcers: set[str]) -> Announcement:
    if ann is None:
        raise ServiceError("That announcement doesn't exist (here).")
    if by != ann.author and by not in announcers:
        raise ServiceError(f"Only <@{ann.author}> (who wrote {ann.public_id}) can change it.")
    return ann


def edit_announcement(session: Session, *, team_id: str, announcement_id: int, by: str, title: str, body: str,
                      send_at: datetime | None = None, announcers: frozenset[str] | set[str] = frozenset(),
                      now: datetime | None = None) -> Announcement:
    """New text for every copy: delivered ones are queued for chat.update (version_sent < version)."""
    now = now or clock.now()
    ann = _check_owner(get(session, announcement_id, team_id=team_id, lock=True), by, set(announcers))
    if ann.status in ("retracted", "cancelled"):
        raise ServiceError(f"{ann.public_id} was {ann.status}; it can't be edited.")
    if not title.strip():
        raise ServiceError("Give the announcement a title.")
    ann.title, ann.body = title.strip()[:255], body.strip()
    ann.version += 1
    ann.updated_at = now
    if ann.status == "scheduled":  # the edit modal shows the picker then; emptied means "now"
        ann.send_at = send_at if send_at and send_at > now else now
        session.execute(update(Delivery).where(Delivery.announcement_id == ann.id, Delivery.status == "pending")
                        .values(next_attempt_at=ann.send_at))
    session.execute(update(Delivery).where(Delivery.announcement_id == ann.id, Delivery.status == "sent")
                    .values(next_attempt_at=now))
    return ann


def retract_announcement(session: Session, *, team_id: str, announcement_id: int, by: str,
                         announcers: frozenset[str] | set[str] = frozenset(),
                         now: datetime | None = None) -> Announcement:
    """Copies not yet posted are never posted; posted ones are queued to be replaced by a notice."""
    now = now or clock.now()
    ann = _check_owner(get(session, announcement_id, team_id=team_id, lock=True), by, set(announcers))
    if ann.status in ("retracted", "cancelled"):
        return ann
    ann.status, ann.retracted_by, ann.updated_at = "retracted", by, now
    session.execute(update(Delivery).where(Delivery.announcement_id == ann.id, Delivery.status == "pending")
                    .values(status="cancelled", locked_until=None))
    session.execute(update(Delivery).where(Delivery.announcement_id == ann.id, Delivery.status == "sent")
                    .values(next_attempt_at=now))
    return ann


def cancel_announcement(session: Session, *, team_id: str, announcement_id: int, by: str,
                        announcers: frozenset[str] | set[str] = frozenset()) -> Announcement:
    """A scheduled announcement that has not started sending is dropped; nothing is ever posted."""
    ann = _check_owner(get(session, announcement_id, team_id=team_id), by, set(announcers))
    if ann.status == "cancelled":
        return ann
    if ann.status != "scheduled":
        raise ServiceError(f"{ann.public_id} is already {ann.status}; use Retract to take it back.")
    # Deliveries first: a sender that has just claimed one holds its row lock, so this waits and then
    # sees "sending" below; a sender that comes later finds the row cancelled (same lock order as claims).
    session.execute(update(Delivery).where(Delivery.announcement_id == ann.id, Delivery.status == "pending")
                    .values(status="cancelled"))
    started = session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.announcement_id == ann.id, Delivery.status.in_(("sending", "sent", "failed"))))
    if started:
        raise ServiceError(f"{ann.public_id} has started sending; use Retract to take it back.")
    ann.status = "cancelled"
    return ann


def record_ack(session: Session, *, team_id: str, announcement_id: int, channel: str, user: str) -> bool:
    """One acknowledgement per person per announcement of this workspace. True if this one is new."""
    if get(session, announcement_id, team_id=team_id) is None:
        return False
    return insert_ignore(session, Acknowledgement, {"announcement_id": announcement_id, "channel": channel,
                                                    "user_id": user, "created_at": clock.now()},
                         conflict=["announcement_id", "user_id"])


def ack_counts(session: Session, announcement_id: int) -> dict[str, int]:
    return {c: n for c, n in session.execute(
        select(Acknowledgement.channel, func.count()).where(Acknowledgement.announcement_id == announcement_id)
        .group_by(Acknowledgement.channel).order_by(Acknowledgement.channel))}


def recent_by_author(session: Session, *, team_id: str, author: str, limit: int = 5) -> list[dict[str, Any]]:
    """For App Home: the author's latest announcements with acknowledgements per channel."""
    out = []
    for a in session.scalars(select(Announcement).where(Announcement.team_id == team_id,
                                                        Announcement.author == author)
                             .order_by(Announcement.id.desc()).limit(limit)):
        out.append({"id": a.id, "title": a.title, "status": a.status, "acks": ack_counts(session, a.id),
                    "channels": len(a.deliveries)})
    return out


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


def to_record(a: Announcement) -> dict[str, Any]:
    return {
        "id": a.public_id, "title": a.title, "body": a.body, "areas": list(a.areas or []), "author": a.author,
        "status": a.status, "send_at": _iso(a.send_at), "late": a.late, "version": a.version,
        "decision_ids": list(a.decision_ids or []),
        "deliveries": [{"channel": d.channel, "ts": d.ts, "status": d.status, "error": d.error, "late": d.late}
                       for d in a.deliveries],
    }


def export_announcements(session: Session, include_all: bool = False) -> Iterator[dict[str, Any]]:
    for a in session.scalars(select(Announcement).order_by(Announcement.id)):
        yield to_record(a)
