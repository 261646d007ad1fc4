"""`find_themes`: feedback items -> named themes, offline and deterministic.

Pipeline: vectors (stored ones if every item has one, else an embedder) ->
`cluster_vectors` (k chosen by silhouette, see cluster.py) -> groups ->
c-TF-IDF keyphrases, title, summary and representatives (naming.py).

What happens to small groups: nothing is dropped. Groups smaller than
`min_theme_size` and, when `max_themes` is set, the groups beyond the
`max_themes` largest are merged into one final theme titled "Other" (always
last, whatever its size). So `sum(t.count for t in themes) == len(items)`
and a digest can say "and 23 other items" honestly.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.themes.cluster import Clustering, cluster_vectors
from bot.themes.embedders import Embedder, default_embedder, is_storable, l2_normalize
from bot.themes.naming import group_keyphrases, make_summary, make_title, representative_title
from bot.themes.types import Theme, ThemeItem

log = logging.getLogger(__name__)

OTHER_TITLE = "Other"
N_REPRESENTATIVES = 3


def default_min_theme_size(n: int) -> int:
    """Groups below this size go to "Other".

    2 for a handful of items, 3 from 30 items (a pair is a coincidence more
    often than a theme), and 0.5% of the items for big sets so a 100k-item
    digest does not list 40-item crumbs.
    """
    return max(2 if n < 30 else 3, math.ceil(0.005 * n))


@dataclass
class ThemeRun:
    """`find_themes` output plus what the bench and logs want to know."""

    themes: list[Theme]
    clustering: Clustering
    embedder_name: str  # "stored" when the items' own vectors were used
    seconds_embed: float
    seconds_total: float


def _stored_vectors(items: Sequence[ThemeItem]) -> np.ndarray | None:
    first = items[0].embedding
    if first is None:
        return None
    dim = len(first)
    if dim == 0 or any(it.embedding is None or len(it.embedding) != dim for it in items):
        return None
    return np.asarray([it.embedding for it in items], dtype=np.float32)


def _vectors(
    items: Sequence[ThemeItem], embedder: Embedder | None, vectors: np.ndarray | None
) -> tuple[np.ndarray, str]:
    if vectors is not None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(items):
            raise ValueError(f"vectors has shape {vectors.shape}, expected ({len(items)}, dim)")
        return vectors, "stored"
    stored = _stored_vectors(items)
    if stored is not None:
        return stored, "stored"
    emb = embedder if embedder is not None else default_embedder()
    have = [i for i, it in enumerate(items) if it.embedding is not None]
    missing = [i for i, it in enumerate(items) if it.embedding is None]
    dims = {len(items[i].embedding or ()) for i in have}
    # Mixed: some items were embedded at capture time, new ones not yet. Reuse the
    # stored ones only if the embedder can produce comparable vectors.
    if have and len(dims) == 1 and dims == {emb.dim} and is_storable(emb):
        out = np.empty((len(items), emb.dim), dtype=np.float32)
        out[have] = np.asarray([items[i].embedding for i in have], dtype=np.float32)
        out[missing] = emb.embed([items[i].text for i in missing])
        return out, emb.name
    return emb.embed([it.text for it in items]), emb.name


def find_themes_run(
    items: Sequence[ThemeItem],
    *,
    embedder: Embedder | None = None,
    max_themes: int | None = 12,
    random_state: int = 0,
    vectors: np.ndarray | None = None,
    min_theme_size: int | None = None,
    n_representatives: int = N_REPRESENTATIVES,
) -> ThemeRun:
    """Like `find_themes`, but also returns the clustering and timings."""
    t0 = time.perf_counter()
    items = list(items)
    n = len(items)
    if n == 0:
        empty = Clustering(np.zeros(0, np.int64), np.zeros((0, 0), np.float32), 0, float("nan"), 0)
        return ThemeRun([], empty, "", 0.0, 0.0)

    x, source = _vectors(items, embedder, vectors)
    t_embed = time.perf_counter() - t0
    x = l2_normalize(x)
    clustering = cluster_vectors(x, random_state=random_state)
    labels = clustering.labels
    sizes = np.bincount(labels, minlength=clustering.k)

    # Biggest first; equal sizes by first appearance so the order is stable.
    first_seen = np.full(clustering.k, n, dtype=np.int64)
    np.minimum.at(first_seen, labels, np.arange(n))
    order = sorted(range(clustering.k), key=lambda g: (-sizes[g], first_seen[g]))
    floor = default_min_theme_size(n) if min_theme_size is None else max(1, min_theme_size)
    # A lone group is kept whatever its size: "Other" alone would say nothing.
    keep = [g for g in order if sizes[g] >= floor or clustering.k == 1]
    if max_themes is not None:
        keep = keep[: max(0, max_themes)]
    group_of = np.full(clustering.k, len(keep), dtype=np.int64)  # len(keep) = the "Other" group
    for new, g in enumerate(keep):
        group_of[g] = new
    groups = group_of[labels]
    n_groups = len(keep) + int((groups == len(keep)).any())

    phrases = group_keyphrases([it.text for it in items], groups, n_groups)

    themes: list[Theme] = []
    for g in range(n_groups):
        members = np.flatnonzero(groups == g)
        is_other = g == len(keep)
        centroid = l2_normalize(x[members].sum(axis=0))[0]
        sims = x[members] @ centroid
        central = members[np.argsort(-sims, kind="stable")]
        best = central[:n_representatives]
        group_items = [items[i] for i in members]
        title = OTHER_TITLE
        if not is_other:
            title = representative_title(
                [items[i].text for i in central], phrases[g], avoid={it.customer or "" for it in group_items}
            ) or make_title(phrases[g], items[best[0]].text)
        themes.append(
            Theme(
                title=title,
                summary=make_summary(group_items, phrases[g], other=is_other),
                keyphrases=phrases[g],
                item_ids=[it.id for it in group_items],
                representative_ids=[items[i].id for i in best],
                centroid=[float(v) for v in centroid],
            )
        )
    total = time.perf_counter() - t0
    log.info(
        "themes: %d items, %s vectors, k=%d (silhouette %.3f), %d themes, %.2fs",
        n,
        source,
        clustering.k,
        clustering.silhouette,
        len(themes),
        total,
    )
    return ThemeRun(themes, clustering, source, t_embed, total)


def find_themes(
    items: list[ThemeItem],
    *,
    embedder: Embedder | None = None,
    max_themes: int | None = 12,
    random_state: int = 0,
    vectors: np.ndarray | None = None,
    min_theme_size: int | None = None,
) -> list[Theme]:
    """Group feedback into themes, biggest first, with offline names.

    - The number of themes is found from the data (silhouette over k = 2 ..
      ~2*sqrt(n)); `max_themes` only limits how many are returned as named
      themes (None = no limit): the rest go to the final "Other" theme.
    - Vectors: `vectors` (an (n, dim) matrix aligned with `items`, the cheap
      way for large stored sets, see `unpack_vectors`), else the items' stored
      `embedding`s when every item has one of the same width, else `embedder`
      (default: `default_embedder()`).
    - `item_ids` keep input order; `representative_ids` are the items nearest
      the theme centre, best first.
    - Same input and `random_state` -> same output.
    """
    return find_themes_run(
        items,
        embedder=embedder,
        max_themes=max_themes,
        random_state=random_state,
        vectors=vectors,
        min_theme_size=min_theme_size,
    ).themes
