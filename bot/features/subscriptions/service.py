"""Product areas and which channels subscribe to them (plain functions over a Session)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.common import insert_ignore, normalise_area, split_list
from bot.core.models import Area, Subscription


@dataclass
class SubscribeResult:
    added: list[str] = field(default_factory=list)  # labels newly subscribed (or re-activated)
    already: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # areas that did not exist before
    unknown: list[str] = field(default_factory=list)  # refused: unknown and the person may not create areas


def known_areas(session: Session, *, team_id: str) -> list[Area]:
    return list(session.scalars(select(Area).where(Area.team_id == team_id).order_by(Area.label)))


def find_areas(session: Session, *, team_id: str, labels: list[str]) -> dict[str, Area | None]:
    """label as typed -> the Area it names (matched on the normalised name), or None."""
    names = {label: normalise_area(label) for label in labels}
    found = {a.name: a for a in session.scalars(
        select(Area).where(Area.team_id == team_id, Area.name.in_(set(names.values()))))}
    return {label: found.get(name) for label, name in names.items()}


def unknown_areas(session: Session, *, team_id: str, text: str) -> list[str]:
    return [label for label, area in find_areas(session, team_id=team_id, labels=split_list(text)).items()
            if area is None]


def ensure_area(session: Session, *, team_id: str, label: str, by: str | None) -> tuple[Area, bool]:
    """The area named `label`, created on first use. Returns (area, created)."""
    name = normalise_area(label)
    created = insert_ignore(session, Area, {"team_id": team_id, "name": name, "label": label.strip()[:80],
                                            "created_by": by, "created_at": clock.now()},
                            conflict=["team_id", "name"])
    area = session.scalars(select(Area).where(Area.team_id == team_id, Area.name == name)).one()
    return area, created


def subscribe(session: Session, *, team_id: str, channel_id: str, text: str, by: str | None,
              may_create: bool) -> SubscribeResult:
    result = SubscribeResult()
    for label, area in find_areas(session, team_id=team_id, labels=split_list(text)).items():
        if area is None:
            if not may_create:
                result.unknown.append(label)
                continue
            area, created = ensure_area(session, team_id=team_id, label=label, by=by)
            if created:
                result.created.append(area.label)
        added = insert_ignore(session, Subscription,
                              {"team_id": team_id, "channel_id": channel_id, "area_id": area.id, "active": True,
                               "created_by": by, "created_at": clock.now()},
                              conflict=["team_id", "channel_id", "area_id"])
        if not added:
            # An inactive subscription (channel was archived, bot removed) comes back on a new /subscribe.
            r = session.execute(update(Subscription).where(
                Subscription.team_id == team_id, Subscription.channel_id == channel_id,
                Subscription.area_id == area.id, Subscription.active.is_(False),
            ).values(active=True, inactive_reason=None))
            added = bool(r.rowcount)  # type: ignore[attr-defined]
        (result.added if added else result.already).append(area.label)
    return result


def unsubscribe(session: Session, *, team_id: str, channel_id: str, text: str) -> tuple[list[str], list[str]]:
    """-> (labels removed, labels this channel was not subscribed to)."""
    removed: list[str] = []
    missing: list[str] = []
    for label, area in find_areas(session, team_id=team_id, labels=split_list(text)).items():
        sub = None if area is None else session.scalars(select(Subscription).where(
            Subscription.team_id == team_id, Subscription.channel_id == channel_id,
            Subscription.area_id == area.id, Subscription.active.is_(True))).first()
        if sub is None or area is None:
            missing.append(label)
            continue
        session.delete(sub)
        removed.append(area.label)
    return removed, missing


def channel_subscriptions(session: Session, *, team_id: str, channel_id: str) -> list[str]:
    return list(session.scalars(
        select(Area.label).join(Subscription, Subscription.area_id == Area.id)
        .where(Subscription.team_id == team_id, Subscription.channel_id == channel_id,
               Subscription.active.is_(True)).order_by(Area.label)))


def channels_for_areas(session: Session, *, team_id: str, areas: list[str]) -> list[str]:
    """Every channel with an active subscription to at least one of `areas` (normalised names), once."""
    names = {normalise_area(a) for a in areas}
    if not names:
        return []
    rows = session.scalars(
        select(Subscription.channel_id).join(Area, Area.id == Subscription.area_id)
        .where(Subscription.team_id == team_id, Subscription.active.is_(True), Area.name.in_(names))
        .distinct().order_by(Subscription.channel_id))
    return list(rows)


def deactivate_channel(session: Session, team_id: str, channel: str, reason: str) -> int:
    """A channel was archived, deleted or the bot removed: its subscriptions stop (kept, marked inactive)."""
    r = session.execute(update(Subscription).where(
        Subscription.team_id == team_id, Subscription.channel_id == channel, Subscription.active.is_(True),
    ).values(active=False, inactive_reason=reason[:64]))
    return int(r.rowcount or 0)  # type: ignore[attr-defined]
