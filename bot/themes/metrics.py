"""Cluster-quality scores against known labels, shared by the bench and the tests."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from bot.themes.types import Theme


def purity(truth: Sequence[Hashable] | np.ndarray, pred: Sequence[Hashable] | np.ndarray) -> float:
    """Share of items whose predicted group's majority label is their own label.

    Computed over every item: an "Other"/noise group is scored like any other
    group (only its majority label counts as right), so parking hard items
    there cannot inflate the score.
    """
    if len(truth) == 0:
        return float("nan")
    table = contingency_matrix(np.asarray(truth), np.asarray(pred))
    return float(table.max(axis=0).sum() / table.sum())


@dataclass(frozen=True)
class Scores:
    purity: float
    nmi: float
    ari: float
    k: int  # number of predicted groups

    def __str__(self) -> str:
        return f"k={self.k:3d} purity={self.purity:.3f} NMI={self.nmi:.3f} ARI={self.ari:.3f}"


def score(truth: Sequence[Hashable] | np.ndarray, pred: Sequence[Hashable] | np.ndarray) -> Scores:
    t, p = np.asarray(truth), np.asarray(pred)
    return Scores(
        purity=purity(t, p),
        nmi=float(normalized_mutual_info_score(t, p)),
        ari=float(adjusted_rand_score(t, p)),
        k=int(np.unique(p).shape[0]),
    )


def labels_from_themes(themes: Sequence[Theme], ids: Sequence[int]) -> np.ndarray:
    """Theme index per item id, in the order of `ids`; -1 for items in no theme."""
    where = {item_id: i for i, theme in enumerate(themes) for item_id in theme.item_ids}
    return np.asarray([where.get(i, -1) for i in ids], dtype=np.int64)
