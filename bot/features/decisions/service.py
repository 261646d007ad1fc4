"""Decisions: creation, status changes with history, feedback links, closing the loop, reports, export.

No Slack imports. Exactly-once lives in natural keys: Decision.source_key (the modal's view id),
DecisionEvent.request_key (the click), DecisionFeedback (decision x feedback), LoopNotification
(decision x person x trigger). Jobs that talk to Slack are queued in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.core.common import (
    ServiceError,
    enqueue,
    normalise_area,
)
from bot.core.db import is_postgres
from bot.core.ids import DECISION, FEEDBACK, decision_ref, feedback_ref, parse_public_id, parse_public_ids
from bot.core.models import (
    Announcement,
    Decision,
    DecisionEvent,
    DecisionFeedback,
    Feedback,
    LoopNotification,
    utcnow,
)

STATUSES = ("proposed", "in_review", "decided", "rejected", "deferred", "superseded")
OPEN = ("proposed", "in_review")
# Outcomes that answer the people whose feedback is linked.
OUTCOMES = ("decided", "rejected", "deferred")
LABELS = {"proposed": "Proposed", "in_review": "In review", "decided": "Decided", "rejected": "Rejected",
          "deferred": "Deferred", "superseded": "Superseded"}
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def _insert_new(session: Session, model: Any, values: dict[str, Any], *, conflict: list[str]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING that tells reliably whether a row was added.

    Asks for the new id back instead of trusting rowcount: PostgreSQL drivers report -1 for an
    INSERT with RETURNING, which would make a conflict look like a new row.
    """
    stmt: Any
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(model).values(**values).on_conflict_do_nothing(index_elements=conflict)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(model).values(**values).on_conflict_do_nothing(index_elements=conflict)
    stmt = stmt.returning(model.__table__.c.id)
    return session.execute(stmt).first() is not None


def normalise_status(value: str | None) -> str:
    s = (value or "").strip().lower().replace(" ", "_").replace("-", "_")
    if s not in STATUSES:
        raise ServiceError(f"Unknown status {value!r}; use one of: {', '.join(STATUSES)}.")
    return s


def get_decision(session: Session, decision_id: int, *, team_id: str | None = None) -> Decision | None:
    d = session.get(Decision, decision_id)
    if d is None or (team_id is not None and d.team_id != team_id):
        return None
    return d


def find_decision(session: Session, *, team_id: str, text: str) -> Decision | None:
    """'D-3', 'd3', '3' -> the decision, if it exists in this workspace."""
    n = parse_public_id(text, DECISION)
    return get_decision(session, n, team_id=team_id) if n is not None else None


def resolve_feedback_ids(session: Session, *, team_id: str, text: str | None) -> tuple[list[int], list[str]]:
    """'FB-12, FB-40' -> ([12, 40], problems). Unknown ids and junk are problems, named as typed."""
    ids, bad = parse_public_ids(text or "", FEEDBACK)
    problems = [f"{b} is not a feedback id (like FB-12)" for b in bad]
    problems += [f"{feedback_ref(i)} does not exist" for i in missing_feedback(session, team_id=team_id, ids=ids)]
    return ids, problems


def missing_feedback(session: Session, *, team_id: str, ids: list[int]) -> list[int]:
    """The ids that name no feedback in workspace `team_id` (ids come from buttons and forms: never trust them)."""
    if not ids:
        return []
    found = set(session.scalars(select(Feedback.id).where(Feedback.id.in_(ids), Feedback.team_id == team_id)))
    return [i for i in ids if i not in found]


def validate_decision_ids(session: Session, team_id: str, ids: list[int]) -> list[str]:
    """A DecisionIdsValidator (bot/features/__init__.py): the announcement modal names decisions that must exist."""
    wanted = [int(i) for i in ids]
    found = set(session.scalars(select(Decision.id).where(Decision.id.in_(wanted), Decision.team_id == team_id))) \
        if wanted else set()
    return [f"{decision_ref(i)} does not exist" for i in wanted if i not in found]


# --- creation -----------------------------------------------------------------------------------


def create_decision(session: Session, *, team_id: str, source_key: str, title: str, created_by: str,
                    channel: str | None, context: str = "", status: str = "proposed", owner: str | None = None,
                    due: date | None = None, area: str | None = None,
                    feedback_ids: Iterable[int] = ()) -> tuple[Decision, bool]:
    """Store a decision once per `source_key` (a resubmitted modal returns the first one), with its
    first history row and links, and queue the card. Returns (decision, created)."""
    title = (title or "").strip()
    if not title:
        raise ServiceError("Give the decision a title.")
    status = normalise_status(status)
    now = utcnow()
    created = _insert_new(session, Decision, {
        "team_id": team_id, "source_key": source_key[:255], "title": title[:255], "context": context or "",
        "status": status, "owner": owner or created_by, "due": due,
        "area": normalise_area(area) if area and area.strip() else None, "channel": channel,
        "created_by": created_by, "created_at": now, "updated_at": now, "status_changed_at": now,
    }, conflict=["source_key"])
    d = session.scalar(select(Decision).where(Decision.source_key == source_key[:255]))
    assert d is not None
    if not created:
        return d, False
    session.add(DecisionEvent(decision_id=d.id, from_status=None, status=status, by=created_by, at=now,
                              request_key=f"create:{source_key}"[:255]))
    for fid in feedback_ids:
        _insert_new(session, DecisionFeedback, {"decision_id": d.id, "feedback_id": fid, "linked_by": created_by,
                                                  "created_at": now}, conflict=["decision_id", "feedback_id"])
    session.flush()
    session.refresh(d, ["links", "history"])
    enqueue(session, key=f"decision.post:{d.id}", kind="decision.post", team_id=team_id,
            payload={"decision_id": d.id, "author": created_by})
    if status in OUTCOMES:  # logged after the fact: the loop still closes
        close_loop(session, decision=d, trigger=status)
    return d, True


# --- status changes -----------------------------------------------------------------------------


def request_key(action_ts: str, user: str, decision_id: int) -> str:
    """A click's own identity: Slack resends the same payload on retry, a new click has a new action_ts."""
    return f"{action_ts}:{user}:{decision_id}"


def request_status_change(session: Session, *, team_id: str, decision_id: int, status: str, user: str,
                          key: str, channel: str | None) -> bool:
    """At the edge: record the request as a durable job; the worker checks permission and applies it."""
    status = normalise_status(status)
    return enqueue(session, key=f"decision.status:{key}", kind="decision.status", team_id=team_id,
                   payload={"decision_id": decision_id, "status": status, "user": user, "request_key": key,
                            "channel": channel})


def may_change(decision: Decision, user: str, *, is_admin: bool) -> bool:
    """Only the owner and workspace admins/owners change a decision's status."""
    return user == decision.owner or is_admin


@dataclass(frozen=True)
class StatusChange:
    changed: bool
    decision_id: int
    from_status: str | None
    status: str
    reason: str = ""  # why nothing changed: "duplicate" | "same" | "missing"


def apply_status_change(session: Session, *, team_id: str, decision_id: int, status: str, by: str, key: str,
                        now: datetime | None = None) -> StatusChange:
    """Apply a permitted change once. A retried request (same key) or a click that sets the status the
    decision already has changes nothing. An outcome creates the loop notifications in this transaction."""
    status = normalise_status(status)
    q = select(Decision).where(Decision.id == decision_id, Decision.team_id == team_id)
    if is_postgres(session):  # two replicas applying two clicks at once must see each other's result
        q = q.with_for_update()
    d = session.scalar(q)
    if d is None:
        return StatusChange(False, decision_id, None, status, "missing")
    if session.scalar(select(DecisionEvent.id).where(DecisionEvent.request_key == key[:255])) is not None:
        return StatusChange(False, d.id, d.status, status, "duplicate")
    if d.status == status:
        return StatusChange(False, d.id, d.status, status, "same")
    now = now or utcnow()
    before = d.status
    if not _insert_new(session, DecisionEvent, {"decision_id": d.id, "from_status": before, "status": status,
                                                  "by": by, "at": now, "request_key": key[:255]},
                         conflict=["request_key"]):
        return StatusChange(False, d.id, before, status, "duplicate")
    d.status, d.status_changed_at, d.updated_at = status, now, now
    session.flush()
    event_id = session.scalar(select(DecisionEvent.id).where(DecisionEvent.request_key == key[:255]))
    enqueue(session, key=f"decision.card:{d.id}:ev{event_id}", kind="decision.card", team_id=team_id,
            payload={"decision_id": d.id})
    enqueue(session, key=f"decision.note:ev{event_id}", kind="decision.note", team_id=team_id,
            payload={"decision_id": d.id, "by": by, "from": before, "to": status})
    if status in OUTCOMES:
        close_loop(session, decision=d, trigger=status)
    return StatusChange(True, d.id, before, status)


# --- links --------------------------------------------------------------------------------------


def link_feedback(session: Session, *, team_id: str, decision_id: int, feedback_id: int, by: str) -> bool:
    """Link one item; True if the link is new. The card is refreshed, and if the decision already has an
    outcome, the people behind the new item hear about it too (once)."""
    d = get_decision(session, decision_id, team_id=team_id)
    if d is None:
        raise ServiceError(f"{decision_ref(decision_id)} does not exist.")
    fb = session.get(Feedback, feedback_id)
    if fb is None or fb.team_id != team_id:
        raise ServiceError(f"{feedback_ref(feedback_id)} does not exist.")
    added = _insert_new(session, DecisionFeedback, {"decision_id": d.id, "feedback_id": fb.id, "linked_by": by,
                                                      "created_at": utcnow()},
                          conflict=["decision_id", "feedback_id"])
    if added:
        session.refresh(d, ["links"])
        enqueue(session, key=f"decision.card:{d.id}:fb{fb.id}", kind="decision.card", team_id=team_id,
                payload={"decision_id": d.id})
        if d.status in OUTCOMES:
            close_loop(session, decision=d, trigger=d.status)
    return added


# --- closing the loop ---------------------------------------------------------------------------


def people_behind(session: Session, feedback_ids: list[int]) -> dict[str, list[int]]:
    """Slack user -> the linked items they captured or reported (reporters only when a Slack user id).
    Items merged into a linked item count as linked: their people are part of the loop too."""
    people: dict[str, list[int]] = {}
    if not feedback_ids:
        return people
    linked = or_(Feedback.id.in_(feedback_ids), Feedback.merged_into.in_(feedback_ids))
    for fb in session.scalars(select(Feedback).where(linked, Feedback.status == "active").order_by(Feedback.id)):
        for who in (fb.captured_by, fb.reporter):
            if who and _SLACK_USER.match(who) and fb.id not in people.setdefault(who, []):
                people[who].append(fb.id)
    return people


def close_loop(session: Session, *, decision: Decision, trigger: str) -> int:
    """One LoopNotification (and its DM job) per person per decision and trigger. Returns how many are new."""
    new = 0
    for user, fids in people_behind(session, decision.feedback_ids).items():
        if _insert_new(session, LoopNotification, {
            "team_id": decision.team_id, "decision_id": decision.id, "user_id": user, "trigger": trigger[:64],
            "feedback_ids": fids, "status": "pending", "created_at": utcnow(),
        }, conflict=["decision_id", "user_id", "trigger"]):
            nid = session.scalar(select(LoopNotification.id).where(
                LoopNotification.decision_id == decision.id, LoopNotification.user_id == user,
                LoopNotification.trigger == trigger[:64]))
            enqueue(session, key=f"loop.notify:{nid}", kind="loop.notify", team_id=decision.team_id,
                    payload={"notification_id": nid})
            new += 1
    return new


def links_moved(session: Session, team_id: str, decision_ids: set[int], why: str) -> None:
    """Feedback merged or unmerged moved these decisions' links (bot/composition.py gives this to the
    feedback feature): the cards show their linked items, so they are refreshed; a decision already made
    tells the people now behind it (close_loop sends each person one note per outcome)."""
    for d in session.scalars(select(Decision).where(Decision.id.in_(decision_ids), Decision.team_id == team_id)):
        session.refresh(d, ["links"])
        enqueue(session, key=f"decision.card:{d.id}:{why}", kind="decision.card", team_id=team_id,
                payload={"decision_id": d.id})
        if d.status in OUTCOMES:
            close_loop(session, decision=d, trigger=d.status)


def announcement_decision_ids(announcement: Any) -> list[int]:
    ids: list[int] = []
    for raw in announcement.decision_ids or []:
        n = raw if isinstance(raw, int) else parse_public_id(str(raw), "D")
        if n is not None and n not in ids:
            ids.append(n)
    return ids


def on_announcement_sent(session: Session, announcement: Announcement) -> None:
    """An AnnouncementSent callback (bot/features/__init__.py): the change named by these decisions shipped; tell the people behind them."""
    for did in announcement_decision_ids(announcement):
        d = get_decision(session, did, team_id=announcement.team_id)
        if d is not None:
            close_loop(session, decision=d, trigger=f"shipped:{announcement.public_id}")


def trigger_outcome(trigger: str) -> str:
    """'decided' -> 'decided'; 'shipped:AN-4' -> 'shipped'."""
    return trigger.split(":", 1)[0]


# --- reports ------------------------------------------------------------------------------------


def decision_item(d: Decision) -> dict[str, Any]:
    return {"id": d.public_id, "title": d.title, "status": d.status, "owner": d.owner,
            "due": d.due.isoformat() if d.due else None, "channel": d.channel, "ts": d.ts,
            "feedback_ids": [feedback_ref(i) for i in d.feedback_ids]}


def is_overdue(d: Decision, today: date) -> bool:
    return d.status in OPEN and d.due is not None and d.due < today


def is_stale(d: Decision, now: datetime, stale_days: int) -> bool:
    return d.status in OPEN and d.status_changed_at < now - timedelta(days=stale_days)


def decision_status_report(session: Session, *, team_id: str, now: datetime, stale_days: int,
                           period_start: datetime, period_end: datetime) -> dict[str, list[dict[str, Any]]]:
    """For the digest: outcomes reached in the period, what is in review, overdue and stale."""
    today = now.astimezone(UTC).date()
    made = [decision_item(d) for d in session.scalars(
        select(Decision).where(Decision.team_id == team_id, Decision.status.in_(OUTCOMES),
                               Decision.status_changed_at >= period_start, Decision.status_changed_at < period_end)
        .order_by(Decision.status_changed_at, Decision.id))]
    open_ = list(session.scalars(select(Decision).where(Decision.team_id == team_id, Decision.status.in_(OPEN))
                                 .order_by(Decision.id)))
    return {
        "made": made,
        "in_review": [decision_item(d) for d in open_ if d.status == "in_review"],
        "overdue": [decision_item(d) for d in open_ if is_overdue(d, today)],
        "stale": [decision_item(d) for d in open_ if is_stale(d, now, stale_days)],
    }


def latest_decisions(session: Session, *, team_id: str, limit: int = 100) -> list[Decision]:
    return list(session.scalars(select(Decision).where(Decision.team_id == team_id)
                                .order_by(Decision.id.desc()).limit(limit)))


# --- export -------------------------------------------------------------------------------------

EXPORT_FIELDS = ["id", "title", "context", "status", "owner", "due", "area", "feedback_ids", "channel", "ts",
                 "history"]


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def decision_record(d: Decision) -> dict[str, Any]:
    return {
        "id": d.public_id, "title": d.title, "context": d.context, "status": d.status, "owner": d.owner,
        "due": d.due.isoformat() if d.due else None, "area": d.area,
        "feedback_ids": [feedback_ref(i) for i in d.feedback_ids], "channel": d.channel, "ts": d.ts,
        "history": [{"status": e.status, "by": e.by, "at": _iso(e.at)} for e in d.history],
    }


def export_decisions(session: Session, *, team_id: str | None = None, batch: int = 500) -> Iterator[dict[str, Any]]:
    q = select(Decision).order_by(Decision.id)
    if team_id:
        q = q.where(Decision.team_id == team_id)
    for d in session.scalars(q.execution_options(yield_per=batch)):
        yield decision_record(d)

