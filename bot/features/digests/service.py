"""Building a digest's data: themes of the period, their trend, accounts, quotes and decisions.

Pure over a Session (no Slack). The expensive part scales with the period's volume, so rows are loaded
as plain tuples of the needed columns and stored vectors are unpacked straight into one numpy matrix
(`unpack_vectors`), never as per-row Python floats: 100k items x 384 dims stays ~150 MB.

Trend: themes are found on the current period only; items of the previous periods are then assigned
to the nearest current theme centroid, and counted only if they are at least as close as the theme's
own typical member (the 10th percentile of its members' similarity). That gives "same theme last
week" without clustering history again, and it is what feeds the 8-period chart.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.ids import decision_ref
from bot.core.models import Decision, DecisionFeedback, Feedback
from bot.core.settings import Settings
from bot.features.decisions.service import decision_status_report
from bot.features.digests.data import (
    DECISION_STATUSES,
    HISTORY_PERIODS,
    N_QUOTES,
    DigestData,
    DigestTheme,
)
from bot.themes import (
    OTHER_TITLE,
    Embedder,
    ThemeItem,
    default_embedder,
    find_themes_run,
    is_storable,
    l2_normalize,
    unpack_vectors,
)

log = logging.getLogger(__name__)

def namer_for(settings: Settings, timeout: float = 20.0) -> Any:
    """A ThemeNamer when OPENAI_API_KEY is set, else None (the digest is then named offline)."""
    if not settings.llm_enabled:
        return None
    from bot.llm import ThemeNamer  # lazy: loads openai, which a digest without an API key never needs

    return ThemeNamer(api_key=settings.secret("openai_api_key") or "", base_url=settings.openai_base_url,
                      model=settings.loopline_llm_model, timeout=timeout)


def decision_report(session: Session, *, team_id: str, now: datetime, stale_days: int, start: datetime,
                    end: datetime) -> dict[str, list[dict[str, Any]]]:
    """Decisions by status from the decisions feature (its rules, read directly)."""
    try:
        report = decision_status_report(session, team_id=team_id, now=now, stale_days=stale_days,
                                        period_start=start, period_end=end)
    except Exception:  # another feature's bug must not stop the weekly digest
        log.exception("decision report failed; digest goes out without it")
        return {k: [] for k in DECISION_STATUSES}
    return {k: list(report.get(k) or []) for k in DECISION_STATUSES}


def _vectors(rows: list[Any], embedder: Embedder | None) -> np.ndarray:
    """Stored vectors when every row has one of the same model and width; else embed on the fly.

    Current and history rows come in together, so a corpus-fitted embedder (TF-IDF) puts both in one
    space and the trend assignment compares like with like.
    """
    blobs = [r.embedding for r in rows]
    models = {r.embedding_model for r in rows}
    if rows and all(blobs) and len(models) == 1 and len({len(b) for b in blobs}) == 1:
        return unpack_vectors(blobs)
    emb = embedder or default_embedder()
    if is_storable(emb) and any(blobs):
        have = [i for i, r in enumerate(rows) if r.embedding and r.embedding_model == emb.name]
        if have and len({len(rows[i].embedding) for i in have}) == 1:
            missing = [i for i, r in enumerate(rows) if not (r.embedding and r.embedding_model == emb.name)]
            stored = unpack_vectors([rows[i].embedding for i in have])
            out = np.empty((len(rows), stored.shape[1]), dtype=np.float32)
            out[have] = stored
            if missing:
                out[missing] = emb.embed([rows[i].text for i in missing])
            return out
    return emb.embed([r.text or "" for r in rows])


def build_digest(session: Session, *, team_id: str, channel: str, period_key: str, start: datetime,
                 end: datetime, label: str, areas: list[str] | None = None, embedder: Embedder | None = None,
                 namer: Any = None, max_themes: int = 20, stale_days: int = 14,
                 now: datetime | None = None, progress: Callable[[str], None] | None = None) -> DigestData:
    """`progress`, if given, is told each step as it starts (the command line shows it on a terminal)."""
    t0 = time.perf_counter()
    now = now or clock.now()
    step = progress or (lambda _: None)
    step("reading feedback")
    length = end - start
    hist_start = start - length * (HISTORY_PERIODS - 1)
    q = (select(Feedback.id, Feedback.text, Feedback.kind, Feedback.area, Feedback.customer, Feedback.arr,
                Feedback.permalink, Feedback.created_at, Feedback.embedding, Feedback.embedding_model)
         .where(Feedback.team_id == team_id, Feedback.status == "active", Feedback.created_at >= hist_start,
                Feedback.created_at < end, Feedback.merged_into.is_(None))  # a merged item counts under its survivor
         .order_by(Feedback.id))
    if areas:
        q = q.where(Feedback.area.in_(areas))
    rows = list(session.execute(q))
    step(f"reading feedback: {len(rows):,} items")
    cur = [r for r in rows if r.created_at >= start]
    hist = [r for r in rows if r.created_at < start]
    prev_start = start - length
    previous_total = sum(1 for r in hist if r.created_at >= prev_start)

    data = DigestData(team_id=team_id, channel=channel, period_key=period_key, period_start=start, period_end=end,
                      period_label=label, total=len(cur), previous_total=previous_total, themes=[],
                      areas=list(areas or []), kinds=dict(Counter(r.kind for r in cur)))
    data.chart_labels = [(start - length * (HISTORY_PERIODS - 1 - i)).strftime("%-d %b") for i in range(HISTORY_PERIODS)]
    data.decisions = decision_report(session, team_id=team_id, now=now, stale_days=stale_days, start=start, end=end)
    if not cur:
        data.seconds = time.perf_counter() - t0
        return data

    step(f"embedding {len(rows):,} items")
    vecs = l2_normalize(_vectors(cur + hist, embedder))
    cur_vecs, hist_vecs = vecs[: len(cur)], vecs[len(cur):]
    items = [ThemeItem(id=r.id, text=r.text or "", kind=r.kind, area=r.area, customer=r.customer, arr=r.arr,
                       permalink=r.permalink) for r in cur]
    step(f"finding themes among {len(items):,} items")
    run = find_themes_run(items, vectors=cur_vecs, max_themes=max_themes)
    named = [t for t in run.themes if t.title != OTHER_TITLE or len(run.themes) == 1]
    other = [t for t in run.themes if t not in named]

    # LLM naming of the named themes only; ThemeNamer never raises, failures keep the offline text.
    if namer is not None and named:
        step(f"naming {len(named)} themes with the LLM")
        by_id = {it.id: it for it in items if any(it.id in t.representative_ids for t in named)}
        text = namer.name_themes(named, by_id, period_label=label)
        text.apply_to(named)
        data.headline = text.headline
        data.llm_named = text.named

    # History: nearest current centroid, thresholded per theme; bucketed by period index.
    weekly = np.zeros((len(named), HISTORY_PERIODS), dtype=np.int64)
    index_of = {r.id: i for i, r in enumerate(cur)}
    if named and hist:
        step(f"comparing with {len(hist):,} items of the {HISTORY_PERIODS - 1} periods before")
        cents = l2_normalize(np.asarray([t.centroid for t in named], dtype=np.float32))
        thresholds = np.empty(len(named), dtype=np.float32)
        for j, t in enumerate(named):
            member_sims = cur_vecs[[index_of[i] for i in t.item_ids]] @ cents[j]
            thresholds[j] = float(np.clip(np.percentile(member_sims, 10), 0.2, 0.95))
        bucket = np.array([int((r.created_at - hist_start) / length) for r in hist], dtype=np.int64)
        for s0 in range(0, len(hist), 8192):
            sims = hist_vecs[s0:s0 + 8192] @ cents.T
            best = sims.argmax(axis=1)
            ok = sims[np.arange(len(best)), best] >= thresholds[best]
            np.add.at(weekly, (best[ok], np.clip(bucket[s0:s0 + 8192][ok], 0, HISTORY_PERIODS - 2)), 1)

    links: dict[int, list[str]] = defaultdict(list)
    for fid, did in session.execute(select(DecisionFeedback.feedback_id, DecisionFeedback.decision_id)
                                    .join(Decision, Decision.id == DecisionFeedback.decision_id)
                                    .where(Decision.team_id == team_id)):
        links[fid].append(decision_ref(did))

    row_of = {r.id: r for r in cur}
    # Accounts of items merged into this period's items belong to them (bot/services/merging.py).
    merged_accounts: dict[int, list[tuple[str, float | None]]] = defaultdict(list)
    for into, customer, arr in session.execute(
            select(Feedback.merged_into, Feedback.customer, Feedback.arr)
            .where(Feedback.team_id == team_id, Feedback.merged_into.is_not(None), Feedback.customer.is_not(None),
                   Feedback.created_at >= hist_start)):
        if into is not None and into in row_of and customer:
            merged_accounts[into].append((customer, arr))
    for j, t in enumerate(named):
        members = [row_of[i] for i in t.item_ids]
        weekly[j, HISTORY_PERIODS - 1] = len(members)
        arr_by_customer: dict[str, float] = {}
        for customer, arr in [(r.customer, r.arr) for r in members] + \
                [acc for r in members for acc in merged_accounts.get(r.id, [])]:
            if customer:
                arr_by_customer[customer] = max(arr_by_customer.get(customer, 0.0), arr or 0.0)
        accounts = sorted(arr_by_customer, key=lambda c: (-arr_by_customer[c], c.lower()))
        decisions = sorted({d for r in members for d in links.get(r.id, [])}, key=lambda d: int(d[2:]))
        quotes = [{"id": i, "text": row_of[i].text or "", "permalink": row_of[i].permalink,
                   "customer": row_of[i].customer} for i in t.representative_ids[:N_QUOTES]]
        data.themes.append(DigestTheme(
            title=t.title, summary=t.summary, count=t.count, previous_count=int(weekly[j, HISTORY_PERIODS - 2]),
            feedback_ids=list(t.item_ids), quotes=quotes, accounts=accounts,
            arr=float(sum(arr_by_customer.values())), kinds=dict(Counter(r.kind for r in members).most_common()),
            decisions=decisions, weekly=[int(x) for x in weekly[j]]))
    for t in other:
        data.other_count += t.count
        data.other_ids.extend(t.item_ids)
    data.seconds = time.perf_counter() - t0
    log.info("digest %s/%s: %d items, %d themes, %.2fs", channel, period_key, data.total, len(data.themes),
             data.seconds)
    return data
