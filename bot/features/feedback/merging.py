"""Duplicates: suggesting an open item that a new one repeats, merging two items, undoing a merge.

No Slack imports. A merge keeps both items (texts, sources, permalinks): the merged one gets
`merged_into`, and its votes and decision links move to the surviving item, counted once per person
(a person who already supports the survivor by the same route keeps one row). What moved, and what was
dropped as a repeat, is written on the FeedbackMerge row, so Undo puts back exactly that. Accounts and
the people behind the merged item are read through `merged_into` (see `accounts_of`, and
bot/features/decisions/service.py `people_behind`), so they follow the survivor without being copied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from bot.core.common import ServiceError, insert_ignore, insert_ignore_returning, job_row
from bot.core.ids import feedback_ref
from bot.core.models import (
    DecisionFeedback,
    Feedback,
    FeedbackMerge,
    FeedbackPair,
    FeedbackVote,
    Job,
    utcnow,
)

MAX_SUGGESTIONS = 3
# How many of a workspace's most recent open items a new one is compared with: bounds the work of one
# check (~1 KB per stored vector) whatever the size of the history.
CANDIDATE_WINDOW = 5000

# Cosine thresholds for *suggesting* a duplicate at capture, per embedder (bot/themes/duplicates.py
# holds the research thresholds: the lowest reaching precision 0.9 on the dense tuning sets). A real
# stream has far fewer true duplicates than those sets (every item there has 25-100 siblings), so the
# same threshold gives lower precision in use, and on held-out Banking77 the tuned thresholds reach only
# 0.69-0.78. We take the stricter point where Banking77 itself reaches 0.9 (README "Duplicates"):
# recall falls to ~0.30 (static) / ~0.62 (MiniLM); a missed suggestion costs nothing, a wrong one
# teaches people to ignore them. Embedders never measured (TF-IDF, OpenAI) suggest nothing.
SUGGESTION_THRESHOLDS: dict[str, float] = {
    "static:minilm-static-256": 0.89,
    "onnx:all-MiniLM-L6-v2": 0.79,
    "local:all-MiniLM-L6-v2": 0.79,
}


def suggestion_threshold(embedder_name: str) -> float | None:
    return SUGGESTION_THRESHOLDS.get(embedder_name)


def is_open(item: Feedback) -> bool:
    """Open: active (not withdrawn) and not merged into another item."""
    return item.status == "active" and item.merged_into is None


OPEN = (Feedback.status == "active", Feedback.merged_into.is_(None))


@dataclass(frozen=True)
class Candidate:
    id: int
    score: float


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def kept_apart(session: Session, feedback_id: int) -> set[int]:
    """Items someone said are not the same as this one."""
    out: set[int] = set()
    for low, high in session.execute(select(FeedbackPair.low_id, FeedbackPair.high_id).where(
            or_(FeedbackPair.low_id == feedback_id, FeedbackPair.high_id == feedback_id))):
        out.add(high if low == feedback_id else low)
    return out


def similar_open_items(session: Session, *, team_id: str, feedback_id: int, vector: np.ndarray, model: str,
                       threshold: float, limit: int = MAX_SUGGESTIONS, window: int = CANDIDATE_WINDOW,
                       among: list[int] | None = None) -> list[Candidate]:
    """The open items of this workspace closest to `vector` (same embedding model), at least `threshold`
    in cosine, best first, at most `limit`; never the item itself, items merged into it, or items a
    person kept apart from it. `among`: only these ids (a shortlist from an in-memory index, checked
    here against what the database says now)."""
    q = (select(Feedback.id, Feedback.embedding)
         .where(Feedback.team_id == team_id, *OPEN, Feedback.id != feedback_id,
                Feedback.embedding_model == model, Feedback.embedding.is_not(None)))
    if among is not None:
        if not among:
            return []
        q = q.where(Feedback.id.in_(among))
    rows = session.execute(q.order_by(Feedback.id.desc()).limit(window)).all()
    apart = kept_apart(session, feedback_id)
    rows = [r for r in rows if r.id not in apart and r.embedding and len(r.embedding) == vector.nbytes]
    if not rows:
        return []
    from bot.themes import unpack_vectors

    mat = unpack_vectors([r.embedding for r in rows])
    norms = np.linalg.norm(mat, axis=1) * (float(np.linalg.norm(vector)) or 1.0)
    sims = (mat @ vector.astype(np.float32)) / np.where(norms == 0, 1.0, norms)
    order = np.argsort(-sims)[:limit]
    return [Candidate(rows[i].id, float(sims[i])) for i in order if sims[i] >= threshold]


# --- what an item stands for once others are merged into it --------------------------------------


def merged_children(session: Session, ids: list[int]) -> dict[int, list[Feedback]]:
    """Survivor id -> the items merged into it."""
    out: dict[int, list[Feedback]] = {}
    if ids:
        for child in session.scalars(select(Feedback).where(Feedback.merged_into.in_(ids)).order_by(Feedback.id)):
            out.setdefault(child.merged_into or 0, []).append(child)
    return out


def accounts_of(item: Feedback, children: list[Feedback]) -> dict[str, float | None]:
    """Account -> ARR, once per account, for an item and the items merged into it (the item's own first)."""
    out: dict[str, float | None] = {}
    for f in [item, *children]:
        if f.customer:
            key = next((k for k in out if k.lower() == f.customer.lower()), f.customer)
            known = out.get(key)
            out[key] = max(known or 0.0, f.arr or 0.0) or None
    return out


# --- merge, undo, keep separate -----------------------------------------------------------------


def merge(session: Session, *, team_id: str, feedback_id: int, into_id: int, by: str,
          request_key: str, on_links_moved: LinksMoved | None = None) -> tuple[FeedbackMerge, bool]:
    """Merge FB-`feedback_id` into FB-`into_id`. Returns (record, merged now). A retried click (same
    `request_key`) or a merge already done returns the existing record and changes nothing."""
    done = session.scalar(select(FeedbackMerge).where(FeedbackMerge.request_key == request_key[:255]))
    if done is not None:
        return done, False
    item, into = session.get(Feedback, feedback_id), session.get(Feedback, into_id)
    if item is None or item.team_id != team_id:
        raise ServiceError(f"{feedback_ref(feedback_id)} does not exist.")
    if into is None or into.team_id != team_id:
        raise ServiceError(f"{feedback_ref(into_id)} does not exist.")
    if item.id == into.id:
        raise ServiceError("An item can't be merged into itself.")
    if item.merged_into is not None:
        earlier = session.scalar(select(FeedbackMerge).where(
            FeedbackMerge.feedback_id == item.id, FeedbackMerge.into_id == item.merged_into,
            FeedbackMerge.undone_at.is_(None)).order_by(FeedbackMerge.id.desc()).limit(1))
        if earlier is not None and item.merged_into == into.id:
            return earlier, False
        raise ServiceError(f"{feedback_ref(item.id)} is already merged into {feedback_ref(item.merged_into)}.")
    if not is_open(into):
        why = f"merged into {feedback_ref(into.merged_into)}" if into.merged_into else "withdrawn"
        raise ServiceError(f"{feedback_ref(into.id)} is {why}; it can't take other items.")
    now = utcnow()
    moved: dict[str, Any] = {"votes": [], "dropped_votes": [], "links": [], "dropped_links": [], "children": []}
    have = {(v.user_id, v.via) for v in into.votes}
    for v in list(item.votes):
        if (v.user_id, v.via) in have:
            moved["dropped_votes"].append({"user_id": v.user_id, "via": v.via, "created_at": v.created_at.isoformat()})
            session.execute(delete(FeedbackVote).where(FeedbackVote.id == v.id))
        else:
            moved["votes"].append(v.id)
            session.execute(update(FeedbackVote).where(FeedbackVote.id == v.id).values(feedback_id=into.id))
    linked = set(session.scalars(select(DecisionFeedback.decision_id).where(DecisionFeedback.feedback_id == into.id)))
    decisions: set[int] = set()
    for link in session.scalars(select(DecisionFeedback).where(DecisionFeedback.feedback_id == item.id)):
        decisions.add(link.decision_id)
        if link.decision_id in linked:
            moved["dropped_links"].append({"decision_id": link.decision_id, "linked_by": link.linked_by,
                                           "created_at": link.created_at.isoformat()})
            session.execute(delete(DecisionFeedback).where(DecisionFeedback.id == link.id))
        else:
            moved["links"].append(link.id)
            session.execute(update(DecisionFeedback).where(DecisionFeedback.id == link.id)
                            .values(feedback_id=into.id))
    # Items merged into this one earlier now stand under the survivor too (never a chain of merges).
    for child_id in session.scalars(select(Feedback.id).where(Feedback.merged_into == item.id)):
        moved["children"].append(child_id)
    if moved["children"]:
        session.execute(update(Feedback).where(Feedback.id.in_(moved["children"])).values(merged_into=into.id))
    item.merged_into = into.id
    rid = insert_ignore_returning(session, FeedbackMerge, {
        "team_id": team_id, "feedback_id": item.id, "into_id": into.id, "by": by, "request_key": request_key[:255],
        "moved": moved, "created_at": now, "undone_at": None, "undone_by": None}, conflict=["request_key"])
    record = session.get(FeedbackMerge, rid) if rid is not None else None
    assert record is not None
    session.flush()
    session.expire(into, ["votes"])
    _links_moved(session, on_links_moved, team_id, decisions | linked, f"merge{record.id}")
    return record, True


# Told which decisions' links a merge or an undo moved (decisions refresh their cards and close the loop
# for the people now behind them): given by bot/composition.py, so this feature imports no other.
LinksMoved = Callable[[Session, str, set[int], str], None]


def _links_moved(session: Session, on_links_moved: LinksMoved | None, team_id: str, decision_ids: set[int],
                 why: str) -> None:
    if on_links_moved is not None and decision_ids:
        on_links_moved(session, team_id, decision_ids, why)


def undo_merge(session: Session, *, team_id: str, merge_id: int, by: str,
               on_links_moved: LinksMoved | None = None) -> tuple[FeedbackMerge, bool]:
    """Put back what the merge moved. Returns (record, undone now); undoing twice changes nothing."""
    from datetime import datetime

    record = session.get(FeedbackMerge, merge_id)
    if record is None or record.team_id != team_id:
        raise ServiceError("That merge does not exist.")
    if record.undone_at is not None:
        return record, False
    item = session.get(Feedback, record.feedback_id)
    if item is None or item.merged_into != record.into_id:
        raise ServiceError(f"{feedback_ref(record.feedback_id)} is no longer merged into {feedback_ref(record.into_id)}.")
    moved = record.moved or {}
    if moved.get("votes"):
        session.execute(update(FeedbackVote).where(FeedbackVote.id.in_(moved["votes"]),
                                                   FeedbackVote.feedback_id == record.into_id)
                        .values(feedback_id=item.id))
    for v in moved.get("dropped_votes", []):
        insert_ignore(session, FeedbackVote, {"feedback_id": item.id, "user_id": v["user_id"], "via": v["via"],
                                              "created_at": datetime.fromisoformat(v["created_at"])},
                      conflict=["feedback_id", "user_id", "via"])
    if moved.get("links"):
        session.execute(update(DecisionFeedback).where(DecisionFeedback.id.in_(moved["links"]),
                                                       DecisionFeedback.feedback_id == record.into_id)
                        .values(feedback_id=item.id))
    for link in moved.get("dropped_links", []):
        insert_ignore(session, DecisionFeedback, {"decision_id": link["decision_id"], "feedback_id": item.id,
                                                  "linked_by": link["linked_by"],
                                                  "created_at": datetime.fromisoformat(link["created_at"])},
                      conflict=["decision_id", "feedback_id"])
    if moved.get("children"):
        session.execute(update(Feedback).where(Feedback.id.in_(moved["children"]),
                                               Feedback.merged_into == record.into_id).values(merged_into=item.id))
    item.merged_into = None
    record.undone_at, record.undone_by = utcnow(), by
    session.flush()
    session.expire(item, ["votes"])
    decisions = {int(d) for d in [*(link["decision_id"] for link in moved.get("dropped_links", []))]}
    decisions |= set(session.scalars(select(DecisionFeedback.decision_id).where(
        DecisionFeedback.feedback_id.in_([item.id, record.into_id]))))
    _links_moved(session, on_links_moved, team_id, decisions, f"undo{record.id}")
    return record, True


def keep_separate(session: Session, *, team_id: str, feedback_id: int, other_id: int, by: str) -> bool:
    """Record that these two are different requests: the pair is never suggested again."""
    for fid in (feedback_id, other_id):
        f = session.get(Feedback, fid)
        if f is None or f.team_id != team_id:
            raise ServiceError(f"{feedback_ref(fid)} does not exist.")
    if feedback_id == other_id:
        raise ServiceError("That is one item.")
    low, high = _pair(feedback_id, other_id)
    return insert_ignore(session, FeedbackPair, {"team_id": team_id, "low_id": low, "high_id": high,
                                                 "choice": "separate", "by": by, "created_at": utcnow()},
                         conflict=["low_id", "high_id"])


def item_title(text: str, limit: int = 60) -> str:
    """A short name for an item in a one-line mention: its first line, cut at a word."""
    first = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0]
    return (cut or first[:limit]).rstrip(" ,;:-—") + "…"


def describe(session: Session, ids: list[int]) -> list[dict[str, Any]]:
    """What a suggestion or merge note shows of each item, in the order given: id, title, votes (people,
    once each), accounts (its own and those of items merged into it) and permalink."""
    items = {f.id: f for f in session.scalars(select(Feedback).where(Feedback.id.in_(ids)))} if ids else {}
    children = merged_children(session, list(items))
    out = []
    for fid in ids:
        f = items.get(fid)
        if f is not None:
            out.append({"id": f.id, "title": item_title(f.text), "votes": f.vote_count,
                        "accounts": tuple(accounts_of(f, children.get(f.id, []))), "permalink": f.permalink})
    return out


def still_offered(session: Session, *, team_id: str, feedback_id: int, offered: list[int]) -> list[int]:
    """Of the items once suggested for `feedback_id`, those still open and not kept apart from it."""
    apart = kept_apart(session, feedback_id)
    open_ids = set(session.scalars(select(Feedback.id).where(Feedback.id.in_(offered), Feedback.team_id == team_id,
                                                              *OPEN))) if offered else set()
    return [i for i in offered if i in open_ids and i not in apart and i != feedback_id]


def suggestion_job(*, team_id: str, feedback_id: int, user: str, channel: str | None,
                   response_url: str | None = None) -> dict[str, Any]:
    """The `feedback.similar` job row for one captured item (once per item: its key)."""
    return job_row(key=f"similar:{feedback_id}", kind="feedback.similar", team_id=team_id,
                   payload={"feedback_id": feedback_id, "user": user, "channel": channel,
                            "response_url": response_url})


def queue_suggestion(session: Session, *, team_id: str, feedback_id: int, user: str | None,
                     channel: str | None, response_url: str | None = None) -> None:
    """After a capture by a person of the organisation: look for open items it repeats, after the ack
    (bot/features/feedback/duplicates.py), and tell that person privately. Once per item."""
    if user:
        insert_ignore(session, Job, suggestion_job(team_id=team_id, feedback_id=feedback_id, user=user,
                                                   channel=channel, response_url=response_url), conflict=["key"])
