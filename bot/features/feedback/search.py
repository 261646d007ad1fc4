"""Finding feedback: `/feedback search WORDS` (meaning and words) and `/feedback customer NAME`.

No Slack imports. Search ranks the workspace's open items (active, not merged into another) by a mix of
meaning (cosine between the query's vector and each item's stored vector, same embedder) and words (the
share of the query's words found in the item's text, matched with LIKE so the same SQL runs on SQLite and
PostgreSQL). Both candidate sets are bounded, so one search costs the same on a large history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.core.models import Channel, Decision, DecisionFeedback, Feedback
from bot.features.feedback.merging import OPEN, accounts_of, merged_children

PER_PAGE = 5
MAX_RESULTS = 50
LEXICAL_WINDOW = 500  # most recent items containing any query word
SEMANTIC_WINDOW = 5000  # most recent items compared by meaning
# An item found only by meaning must be at least this close (cosine) to be shown: a query's words are
# few, and every item has *some* nearest neighbour. Items sharing a word with the query need no floor.
SEMANTIC_FLOOR = 0.5
MEANING_WEIGHT, WORDS_WEIGHT = 0.6, 0.4
_WORD = re.compile(r"[\w'’-]{2,}", re.UNICODE)
_STOP = frozenset(["the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "is", "are", "be", "it", "we", "our", "they", "with", "at", "by", "from", "this", "that", "not"])


def query_words(text: str, limit: int = 8) -> list[str]:
    seen: list[str] = []
    for w in _WORD.findall((text or "").lower()):
        w = w.strip("'’-")
        if len(w) >= 2 and w not in _STOP and w not in seen:
            seen.append(w)
    return seen[:limit]


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass
class Hit:
    id: int
    text: str
    votes: int
    accounts: dict[str, float | None]
    permalink: str | None
    decisions: list[dict[str, Any]] = field(default_factory=list)  # {id, title, status}
    merged: int = 0  # items merged into this one
    score: float = 0.0


@dataclass
class Results:
    query: str
    page: int
    total: int
    hits: list[Hit]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PER_PAGE))


def hits_for(session: Session, ids: list[int], scores: dict[int, float] | None = None) -> list[Hit]:
    """Items as shown in a result list, in the order given."""
    items = {f.id: f for f in session.scalars(select(Feedback).where(Feedback.id.in_(ids)))} if ids else {}
    children = merged_children(session, list(items))
    links: dict[int, list[dict[str, Any]]] = {}
    if items:
        for fid, did, title, status in session.execute(
                select(DecisionFeedback.feedback_id, Decision.id, Decision.title, Decision.status)
                .join(Decision, Decision.id == DecisionFeedback.decision_id)
                .where(DecisionFeedback.feedback_id.in_(list(items))).order_by(Decision.id)):
            links.setdefault(fid, []).append({"id": did, "title": title, "status": status})
    out = []
    for i in ids:
        f = items.get(i)
        if f is not None:
            out.append(Hit(id=f.id, text=f.text, votes=f.vote_count, accounts=accounts_of(f, children.get(f.id, [])),
                           permalink=f.permalink, decisions=links.get(f.id, []), merged=len(children.get(f.id, [])),
                           score=(scores or {}).get(f.id, 0.0)))
    return out


def search(session: Session, *, team_id: str, query: str, page: int = 0, vector: np.ndarray | None = None,
           model: str | None = None) -> Results:
    """Best matches first, `PER_PAGE` per page (pages count from 0)."""
    words = query_words(query)
    scores: dict[int, float] = {}
    if words:
        found = session.execute(
            select(Feedback.id, Feedback.text).where(
                Feedback.team_id == team_id, *OPEN,
                or_(*(func.lower(Feedback.text).like(_like(w), escape="\\") for w in words)))
            .order_by(Feedback.id.desc()).limit(LEXICAL_WINDOW)).all()
        for fid, text in found:
            low = (text or "").lower()
            share = sum(1 for w in words if w in low) / len(words)
            scores[fid] = WORDS_WEIGHT * share
    if vector is not None and model:
        rows = session.execute(
            select(Feedback.id, Feedback.embedding).where(
                Feedback.team_id == team_id, *OPEN, Feedback.embedding_model == model,
                Feedback.embedding.is_not(None))
            .order_by(Feedback.id.desc()).limit(SEMANTIC_WINDOW)).all()
        rows = [r for r in rows if r.embedding and len(r.embedding) == vector.nbytes]
        if rows:
            from bot.themes import unpack_vectors

            mat = unpack_vectors([r.embedding for r in rows])
            norms = np.linalg.norm(mat, axis=1) * (float(np.linalg.norm(vector)) or 1.0)
            sims = (mat @ vector.astype(np.float32)) / np.where(norms == 0, 1.0, norms)
            for r, sim in zip(rows, sims, strict=True):
                if r.id in scores or sim >= SEMANTIC_FLOOR:
                    scores[r.id] = scores.get(r.id, 0.0) + MEANING_WEIGHT * max(0.0, float(sim))
    ranked = sorted(scores, key=lambda i: (-scores[i], -i))[:MAX_RESULTS]
    pages = max(1, -(-len(ranked) // PER_PAGE))
    page = min(max(0, page), pages - 1)
    shown = ranked[page * PER_PAGE:(page + 1) * PER_PAGE]
    return Results(query=query, page=page, total=len(ranked), hits=hits_for(session, shown, scores))


# --- /feedback customer NAME ----------------------------------------------------------------------


def known_accounts(session: Session, *, team_id: str) -> list[str]:
    """Every account name the workspace uses (on items and on mapped channels), one spelling each."""
    names: dict[str, str] = {}
    for (name,) in session.execute(select(Feedback.customer).where(Feedback.team_id == team_id,
                                                                   Feedback.customer.is_not(None)).distinct()):
        names.setdefault((name or "").strip().lower(), (name or "").strip())
    for (name,) in session.execute(select(Channel.customer).where(Channel.team_id == team_id,
                                                                  Channel.customer.is_not(None)).distinct()):
        names.setdefault((name or "").strip().lower(), (name or "").strip())
    return sorted((n for k, n in names.items() if k), key=str.lower)


def match_account(session: Session, *, team_id: str, name: str) -> tuple[str | None, list[str]]:
    """(the account, []) when `name` is one account's name or the start of only one (any case);
    (None, candidates) otherwise: several that start with it, or, when none does, those that contain it."""
    want = " ".join((name or "").split()).lower()
    accounts = known_accounts(session, team_id=team_id)
    exact = [a for a in accounts if a.lower() == want]
    if exact:
        return exact[0], []
    prefix = [a for a in accounts if a.lower().startswith(want)]
    if len(prefix) == 1:
        return prefix[0], []
    if prefix:
        return None, prefix
    return None, [a for a in accounts if want in a.lower()]


@dataclass
class AccountView:
    account: str
    items: list[Hit]
    total_items: int
    votes: int  # people, once each, over the account's items
    arr: float | None
    open_decisions: list[dict[str, Any]]


def account_view(session: Session, *, team_id: str, account: str, limit: int = 20) -> AccountView:
    """What one account asked for: its open items (an item merged into another shows as the surviving
    item), most voted first, with totals and the decisions still open on them."""
    mine = list(session.scalars(select(Feedback).where(
        Feedback.team_id == team_id, Feedback.status == "active",
        func.lower(Feedback.customer) == account.lower())))
    ids = sorted({f.merged_into or f.id for f in mine})
    survivors = list(session.scalars(select(Feedback).where(Feedback.id.in_(ids), *OPEN))) if ids else []
    people = {v.user_id for f in survivors for v in f.votes}
    arr_values = [f.arr for f in mine if f.arr]
    mapped = session.scalar(select(func.max(Channel.customer_arr)).where(
        Channel.team_id == team_id, func.lower(Channel.customer) == account.lower()))
    arr = max([*arr_values, *([mapped] if mapped else [])], default=None)
    order = [f.id for f in sorted(survivors, key=lambda f: (-f.vote_count, -f.id))]
    hits = hits_for(session, order[:limit])
    open_decisions: dict[int, dict[str, Any]] = {}
    for did, title, status in session.execute(
            select(Decision.id, Decision.title, Decision.status)
            .join(DecisionFeedback, DecisionFeedback.decision_id == Decision.id)
            .where(DecisionFeedback.feedback_id.in_(order), Decision.status.in_(("proposed", "in_review")))
            .order_by(Decision.id)) if order else []:
        open_decisions[did] = {"id": did, "title": title, "status": status}
    return AccountView(account=account, items=hits, total_items=len(order), votes=len(people), arr=arr,
                       open_decisions=list(open_decisions.values()))
