"""Finding feedback, after the ack: `/feedback search` (and the App Home search form) and
`/feedback customer`. The query is embedded here, never at the edge; the answer goes to the person alone
(the command's or button's response_url, or the search modal they have open)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from bot.features.feedback import find_render as render
from bot.features.feedback import search as svc
from bot.features.feedback.duplicates import embed_missing
from bot.queue.core import JobContext, Jobs
from bot.themes import is_storable
from bot.themes.configured import cached_embedder

log = logging.getLogger(__name__)
jobs = Jobs()  # collected by bot/features/feedback/feature.py


def _query_vector(ctx: JobContext, query: str) -> tuple[np.ndarray | None, str | None]:
    """The query's vector in the space of the stored ones (None: words only)."""
    try:
        embedder = cached_embedder(ctx.settings)
        if not is_storable(embedder) or not query.strip():
            return None, None
        embed_missing(ctx, ctx.team_id or "", embedder)
        return embedder.embed([query])[0], embedder.name
    except Exception:  # an embeddings service that is down leaves the word match
        log.exception("query embedding failed; searching by words only")
        return None, None


def _respond(ctx: JobContext, p: dict[str, Any], text: str, blocks: list[dict[str, Any]]) -> None:
    from bot.features.workspaces.notify import send_response

    send_response(ctx, {"response_url": p.get("response_url"), "user": p["user"], "text": text, "blocks": blocks,
                        "replace_original": bool(p.get("replace"))})


@jobs.handler("feedback.search")
def run_search(ctx: JobContext, p: dict[str, Any]) -> None:
    vector, model = _query_vector(ctx, p["q"])
    with ctx.db.read_session() as s:
        res = svc.search(s, team_id=ctx.team_id or "", query=p["q"], page=int(p.get("page") or 0), vector=vector,
                         model=model)
    if p.get("view_id"):
        ctx.client().views_update(view_id=p["view_id"], view=render.results_modal(res))
        return
    text, blocks = render.results_message(res, capture_text=p.get("capture_text"))
    _respond(ctx, p, text, blocks)


@jobs.handler("feedback.customer")
def run_customer(ctx: JobContext, p: dict[str, Any]) -> None:
    with ctx.db.read_session() as s:
        account, candidates = svc.match_account(s, team_id=ctx.team_id or "", name=p["name"])
        if account is None:
            text, blocks = render.account_not_found(p["name"], candidates)
        else:
            text, blocks = render.account_message(svc.account_view(s, team_id=ctx.team_id or "", account=account))
    _respond(ctx, p, text, blocks)
