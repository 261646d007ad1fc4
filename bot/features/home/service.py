"""What App Home shows: this week at a glance. Plain data, no Slack."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.models import Area, Decision, Feedback, Subscription
from bot.features.contracts import HomeData


def home_data(session: Session, *, team_id: str, user_id: str, now: datetime | None = None) -> HomeData:
    now = now or clock.now()
    week_ago, two_weeks = now - timedelta(days=7), now - timedelta(days=14)
    # An item merged into another counts once, as the surviving item.
    active = (Feedback.team_id == team_id, Feedback.status == "active", Feedback.merged_into.is_(None))
    data = HomeData()
    data.week_total = session.scalar(select(func.count()).where(*active, Feedback.created_at >= week_ago)) or 0
    data.previous_total = session.scalar(
        select(func.count()).where(*active, Feedback.created_at >= two_weeks, Feedback.created_at < week_ago)) or 0
    data.by_kind = {kind: n for kind, n in session.execute(
        select(Feedback.kind, func.count()).where(*active, Feedback.created_at >= week_ago).group_by(Feedback.kind))}
    data.top_areas = [(a or "no area", n) for a, n in session.execute(
        select(Feedback.area, func.count()).where(*active, Feedback.created_at >= week_ago)
        .group_by(Feedback.area).order_by(func.count().desc()).limit(5))]
    open_where = (Decision.team_id == team_id, Decision.status.in_(("proposed", "in_review")))
    data.open_total = session.scalar(select(func.count()).select_from(Decision).where(*open_where)) or 0
    for d in session.scalars(select(Decision).where(*open_where)
                             .order_by(Decision.due.is_(None), Decision.due, Decision.id).limit(10)):
        data.open_decisions.append({"id": d.id, "title": d.title, "status": d.status, "owner": d.owner,
                                    "due": d.due, "channel": d.channel, "ts": d.ts})
    data.mine_total = session.scalar(select(func.count()).select_from(Feedback)
                                     .where(*active, Feedback.captured_by == user_id)) or 0
    for f in session.scalars(select(Feedback).where(*active, Feedback.captured_by == user_id)
                             .order_by(Feedback.id.desc()).limit(10)):
        data.mine.append({"id": f.id, "text": f.text, "kind": f.kind, "votes": f.vote_count, "permalink": f.permalink,
                          "customer": f.customer, "text_pending": f.text_pending})
    for channel, label in session.execute(
            select(Subscription.channel_id, Area.label).join(Area, Area.id == Subscription.area_id)
            .where(Subscription.team_id == team_id, Subscription.active.is_(True))
            .order_by(Subscription.channel_id, Area.label)):
        data.subscriptions.setdefault(channel, []).append(label)
    return data
