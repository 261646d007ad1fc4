"""After a capture, in the worker: is the new item an open item said again? ("Looks like FB-12").

Runs after the ack, never before it: the edge only queues a `feedback.similar` job
(bot/features/feedback/merging.py `queue_suggestion`; for `/feedback TEXT` in the capture's own commit,
bot/features/feedback/service.py). Here the item is embedded (and its vector stored, so the periodic
embedding pass skips it), compared with the workspace's open items, and the person who captured it is
told privately: through the slash command's response_url when there is one, else an ephemeral in the
channel where the confirmation went (a DM when they can't see it).

The worker shares the process (and the GIL) with the edge, so one check must cost little: each process
keeps the recent open items' vectors of a workspace in memory (`VectorIndex`), adds new items by id
range, and the shortlist it gives is checked against the database (still open, same vector, not kept
apart) before anything is suggested. It is rebuilt every few minutes, so items that changed meanwhile
(edited, merged, embedded late) are seen again.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select, update

from bot.core.common import enqueue, queue_private
from bot.core.ids import feedback_ref
from bot.core.models import Feedback
from bot.features.feedback import merge_render as render
from bot.features.feedback import merging
from bot.features.feedback import service as fb_svc
from bot.queue.core import Deferred, JobContext, Jobs
from bot.themes import is_storable, pack_vector, unpack_vector
from bot.themes.configured import cached_embedder

log = logging.getLogger(__name__)
jobs = Jobs()  # collected by bot/features/feedback/feature.py

REBUILD_SECONDS = 300.0
SHORTLIST = 12  # best cached matches re-checked in the database
EMBED_AT_ONCE = 256


@dataclass
class VectorIndex:
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    mat: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    max_id: int = 0
    built: float = 0.0


# One set of indexes per worker (so per process and database), by (workspace, embedder).
_INDEXES: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], VectorIndex]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _normalised(m: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.where(n == 0, 1.0, n)).astype(np.float32)


def _rows_after(ctx: JobContext, team: str, embedder: Any, after: int, limit: int) -> list[tuple[int, np.ndarray]]:
    """Open items of `team` with id > `after` (the most recent `limit`), embedding and storing any without
    a vector of this embedder."""
    with ctx.db.read_session() as s:
        rows = s.execute(select(Feedback.id, Feedback.text, Feedback.embedding, Feedback.embedding_model).where(
            Feedback.team_id == team, Feedback.id > after, *merging.OPEN, Feedback.text_pending.is_(False))
            .order_by(Feedback.id.desc()).limit(limit)).all()
    missing = [r for r in rows if not (r.embedding and r.embedding_model == embedder.name)]
    # At most EMBED_AT_ONCE of them here (the newest): an old backlog is the minute's embedding pass's job,
    # and the index sees it at its next rebuild.
    skipped = {r.id for r in missing[EMBED_AT_ONCE:]}
    missing = missing[:EMBED_AT_ONCE]
    rows = [r for r in rows if r.id not in skipped]
    fresh: dict[int, np.ndarray] = {}
    if missing:
        vectors = embedder.embed([r.text or "" for r in missing])
        with ctx.db.session() as s:
            for r, v in zip(missing, vectors, strict=True):
                fresh[r.id] = np.asarray(v, dtype=np.float32)
                s.execute(update(Feedback).where(Feedback.id == r.id).values(embedding=pack_vector(v),
                                                                            embedding_model=embedder.name))
    out = [(r.id, fresh[r.id] if r.id in fresh else unpack_vector(r.embedding)) for r in rows]
    return sorted(out)


def vector_index(ctx: JobContext, team: str, embedder: Any) -> VectorIndex:
    key = (team, embedder.name)
    with _LOCK:
        indexes = _INDEXES.setdefault(ctx.worker, {})
        idx = indexes.get(key)
        if idx is not None and idx.max_id:
            with ctx.db.read_session() as s:  # ids only grow; if not, the table was emptied: start again
                top = s.scalar(select(func.max(Feedback.id))) or 0
            if top < idx.max_id:
                idx = None
        if idx is None or time.monotonic() - idx.built > REBUILD_SECONDS:
            idx = VectorIndex(built=time.monotonic())
        rows = _rows_after(ctx, team, embedder, idx.max_id, merging.CANDIDATE_WINDOW)
        rows = [(i, v) for i, v in rows if idx.mat.shape[1] in (0, v.shape[0])]
        if rows:
            new_ids = np.asarray([i for i, _ in rows], dtype=np.int64)
            new_mat = _normalised(np.vstack([v for _, v in rows]))
            mat = new_mat if idx.mat.size == 0 else np.vstack([idx.mat, new_mat])
            ids = np.concatenate([idx.ids, new_ids])
            keep = slice(max(0, len(ids) - merging.CANDIDATE_WINDOW), None)  # the most recent window only
            idx = VectorIndex(ids=ids[keep], mat=mat[keep], max_id=int(new_ids.max()), built=idx.built)
        indexes[key] = idx
        return idx


def shortlist(idx: VectorIndex, vector: np.ndarray, *, exclude: int, threshold: float) -> list[int]:
    if idx.mat.size == 0 or idx.mat.shape[1] != vector.shape[0]:
        return []
    v = vector / (float(np.linalg.norm(vector)) or 1.0)
    sims = idx.mat @ v.astype(np.float32)
    sims[idx.ids == exclude] = -1.0
    top = np.argsort(-sims)[:SHORTLIST]
    return [int(idx.ids[i]) for i in top if sims[i] >= threshold - 0.01]


DEFER_SECONDS = 5.0  # while the edge is under a burst, suggestions wait (acks first)


@jobs.handler("feedback.similar")
def suggest_duplicates(ctx: JobContext, p: dict[str, Any]) -> None:
    busy = ctx.worker.edge_busy
    if busy is not None and busy():
        # The worker shares the process with the edge: a suggestion can wait a few seconds, an ack can't.
        raise Deferred("edge busy: duplicate check deferred", retry_after=DEFER_SECONDS)
    embedder = cached_embedder(ctx.settings)
    threshold = merging.suggestion_threshold(embedder.name) if is_storable(embedder) else None
    if threshold is None:
        return  # vectors of an embedder nobody measured: no suggestion rather than a guess
    team = ctx.team_id or ""
    with ctx.db.read_session() as s:
        item = fb_svc.get_feedback(s, p["feedback_id"], team_id=team)
        if item is None or not merging.is_open(item) or item.text_pending or not item.text.strip():
            return
        stored = item.embedding if item.embedding_model == embedder.name else None
        text = item.text
    idx = vector_index(ctx, team, embedder)  # embeds and stores the new item too, when it is recent
    if stored is None:
        with ctx.db.read_session() as s:
            stored = s.scalar(select(Feedback.embedding).where(Feedback.id == p["feedback_id"],
                                                                Feedback.embedding_model == embedder.name))
    if stored:
        vector = unpack_vector(stored)
    else:
        vector = embedder.embed([text])[0]
        with ctx.db.session() as s:
            s.execute(update(Feedback).where(Feedback.id == p["feedback_id"])
                      .values(embedding=pack_vector(vector), embedding_model=embedder.name))
    among = shortlist(idx, vector, exclude=p["feedback_id"], threshold=threshold)
    if not among:
        return
    with ctx.db.session() as s:
        found = merging.similar_open_items(s, team_id=team, feedback_id=p["feedback_id"], vector=vector,
                                           model=embedder.name, threshold=threshold, among=among)
        if not found:
            return
        log.info("FB-%s looks like %s", p["feedback_id"], ", ".join(f"{feedback_ref(c.id)} ({c.score:.2f})" for c in found))
        similar = render.similar_of(merging.describe(s, [c.id for c in found]))
        if not similar:
            return
        msg, blocks = render.suggestion(p["feedback_id"], similar)
        if p.get("response_url"):
            enqueue(s, key=f"similar.note:{p['feedback_id']}", kind="notify.respond", team_id=team,
                    payload={"response_url": p["response_url"], "user": p["user"], "text": msg, "blocks": blocks})
        else:
            queue_private(s, key=f"similar.note:{p['feedback_id']}", team_id=team, user=p["user"],
                          channel=p.get("channel"), text=msg, blocks=blocks)


def embed_missing(ctx: JobContext, team: str, embedder: Any) -> None:
    """Before a search: the workspace's recent items get their vectors (the minute's pass may not have run)."""
    vector_index(ctx, team, embedder)


