"""After a capture, in the worker: is the new item an open item said again? ("Looks like FB-12").

Runs after the ack, never before it: the edge only queues a `feedback.similar` job (bot/services/
merging.py `queue_suggestion`). Here the item is embedded (and its vector stored, so the periodic
embedding pass skips it), compared with the workspace's open items, and the person who captured it is
told privately: through the slash command's response_url when there is one, else an ephemeral in the
channel where the confirmation went (a DM when they can't see it).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import or_, select, update

from bot.models import Feedback
from bot.services import feedback as fb_svc
from bot.services import merging
from bot.services.common import enqueue, queue_private
from bot.slack.render import merging as render
from bot.themes import is_storable, pack_vector, unpack_vector
from bot.worker.core import JobContext, handler
from bot.worker.digests import cached_embedder

log = logging.getLogger(__name__)


@handler("feedback.similar")
def suggest_duplicates(ctx: JobContext, p: dict[str, Any]) -> None:
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
    if stored:
        vector = unpack_vector(stored)
    else:
        vector = embedder.embed([text])[0]
        with ctx.db.session() as s:
            s.execute(update(Feedback).where(Feedback.id == p["feedback_id"])
                      .values(embedding=pack_vector(vector), embedding_model=embedder.name))
    embed_missing(ctx, team, embedder)
    with ctx.db.session() as s:
        found = merging.similar_open_items(s, team_id=team, feedback_id=p["feedback_id"], vector=vector,
                                           model=embedder.name, threshold=threshold)
        if not found:
            return
        log.info("FB-%s looks like %s", p["feedback_id"], ", ".join(f"FB-{c.id} ({c.score:.2f})" for c in found))
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


def embed_missing(ctx: JobContext, team: str, embedder: Any, limit: int = 256) -> None:
    """Open items of the workspace captured since the last embedding pass (it runs every minute) have no
    vector yet: embed the most recent of them now, so that an item said twice within a minute is found."""
    with ctx.db.read_session() as s:
        rows = s.execute(select(Feedback.id, Feedback.text).where(
            Feedback.team_id == team, *merging.OPEN, Feedback.text_pending.is_(False),
            or_(Feedback.embedding.is_(None), Feedback.embedding_model != embedder.name))
            .order_by(Feedback.id.desc()).limit(limit)).all()
    if not rows:
        return
    vectors = embedder.embed([r.text or "" for r in rows])
    with ctx.db.session() as s:
        for r, v in zip(rows, vectors, strict=True):
            s.execute(update(Feedback).where(Feedback.id == r.id).values(embedding=pack_vector(v),
                                                                        embedding_model=embedder.name))
