"""Clustering unit vectors into an automatically chosen number of groups.

How k is chosen (no k from the caller):

1. Take a deterministic random sample of at most `sample_size` rows (all rows
   for a normal weekly digest) and centre it: subtracting the mean vector
   removes the direction every sentence shares (strong in static
   embeddings), so cosines measure what differs between items.
2. Average every sampled row with its `SMOOTH_NEIGHBOURS` (5) nearest rows
   (fewer for under 100 rows, none under 20). Two phrasings of one request
   can sit far apart, but their neighbours mostly agree; on the tuning sets
   (README "Themes") this raised the static embedder's mean NMI from 0.798 to
   0.808 and MiniLM's from 0.830 to 0.838 (80% subsamples, 3 each).
   Build one Ward dendrogram on the sample (from the cosine distances we
   compute anyway: for unit rows the Euclidean distance is sqrt(2 * cosine
   distance)). Every cut k = 2..k_max is then free, and the cosine silhouette
   of every cut comes from one (k_max, s) table of summed distances, updated
   by one row addition per merge as the tree is walked from k_max down to 2
   (`_silhouettes_along_tree`): O(s^2 + k_max^2 * s), ~0.2 s for 3,000 items,
   instead of one O(s^2) pass per k.
3. k is the *smallest* cut whose silhouette is within `KNEE_TOLERANCE` (8%) of
   the best cut's. On feedback-like text the silhouette climbs until the real
   topics are separated and then stays flat while topics are split into
   sub-phrasings; the maximum sits anywhere on that plateau (40 intents came
   out as 61-77 themes), its start is the number of topics. Measured on
   the tuning sets listed in README "Themes" (bench/themes.py): mean |k/true - 1|
   0.13 for the static embedder and 0.15 for MiniLM with the smoothing of step
   2 (0.12 / 0.17 at 5% without it; 0.48 / 0.43 for the maximum). With
   smoothing, 8% is the value that kept every tuning set within +-30% of its
   true number of themes on the default embedder (5%: 75% of subsamples).
4. That cut is polished by spherical k-means (seeded with the cut's centroids:
   Ward finds the shape, k-means fixes its boundary mistakes).
5. If the data is bigger than the sample, the chosen centroids seed a few
   chunked spherical k-means passes over all (unsmoothed) rows, so memory stays O(n*d + k*d)
   and never O(n^2).

k_max = min(ceil(2*sqrt(s)), s // 3): generous enough for many small themes
(77 intents in 3,080 texts), while keeping an average of >= 3 items per group.
Everything is seeded by `random_state`, so the same input gives the same output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import squareform

from bot.themes.embedders import l2_normalize

DEFAULT_SAMPLE_SIZE = 3000
MIN_AVG_CLUSTER_SIZE = 3
# The chosen k is the smallest whose silhouette is at least (1 - this) x the best one (see step 3).
KNEE_TOLERANCE = 0.08
# Each sampled row is averaged with its this many nearest neighbours before the tree is built (step 2).
SMOOTH_NEIGHBOURS = 5
_CHUNK = 8192  # rows per block when scoring all vectors against the centroids


@dataclass(frozen=True)
class Clustering:
    labels: np.ndarray  # (n,) int64 in [0, k)
    centroids: np.ndarray  # (k, d) float32, unit rows
    k: int
    silhouette: float  # cosine silhouette of the chosen partition on the sample (nan if k == 1)
    sample_size: int
    ward_silhouettes: dict[int, float] = field(default_factory=dict)  # diagnostics: cut k -> score
    centre: np.ndarray | None = None  # (d,) mean subtracted before clustering; centroids live in that space


def k_bounds(n: int) -> tuple[int, int]:
    """The range of k tried for n rows; (1, 1) when n is too small to split."""
    k_max = min(math.ceil(2 * math.sqrt(n)), n // MIN_AVG_CLUSTER_SIZE)
    return (2, k_max) if k_max >= 2 else (1, 1)


def cosine_silhouette(dist: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette from a precomputed (s, s) cosine distance matrix.

    Same definition as sklearn's (singletons score 0), but one sparse product
    per k instead of a Python loop, which is what makes scanning ~100 cuts cheap.
    """
    n = labels.shape[0]
    k = int(labels.max()) + 1
    if k < 2 or k >= n:
        return float("nan")
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    onehot = sparse.csr_matrix((np.ones(n, dtype=np.float32), (labels, np.arange(n))), shape=(k, n))
    sums = np.asarray(onehot @ dist, dtype=np.float64)  # (k, n): summed distance of each point to each group
    cols = np.arange(n)
    own_size = sizes[labels]
    a = sums[labels, cols] / np.maximum(own_size - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_to = sums / sizes[:, None]
    mean_to[labels, cols] = np.inf
    mean_to[sizes == 0, :] = np.inf
    b = mean_to.min(axis=0)
    denom = np.maximum(a, b)
    s = np.where(denom > 0, (b - a) / np.where(denom > 0, denom, 1.0), 0.0)
    s[own_size <= 1] = 0.0
    return float(s.mean())


def _silhouette_from_sums(sums: np.ndarray, sizes: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette from summed distances of each point to each group (`sums`, (k, n))."""
    n = labels.shape[0]
    cols = np.arange(n)
    own_size = sizes[labels]
    a = sums[labels, cols] / np.maximum(own_size - 1, 1)
    mean_to = sums / sizes[:, None]
    mean_to[labels, cols] = np.inf
    b = mean_to.min(axis=0)
    denom = np.maximum(a, b)
    sil = np.where(denom > 0, (b - a) / np.where(denom > 0, denom, 1.0), 0.0)
    sil[own_size <= 1] = 0.0
    return float(sil.mean())


def _silhouettes_along_tree(
    tree: np.ndarray, dist: np.ndarray, k_min: int, k_max: int
) -> tuple[dict[int, float], dict[int, np.ndarray]]:
    """Silhouette of every cut k_min..k_max of a linkage tree, and the labels of each cut.

    Cutting into k groups undoes the last k-1 merges. Start from the k_max cut (union-find over
    the first n-k_max merges), build the summed-distance table once, then replay the remaining
    merges one at a time: merging groups a and b adds row b to row a.
    """
    n = dist.shape[0]
    parent = np.arange(2 * n - 1)  # union-find over tree nodes; node n+i is made by merge i

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for i in range(n - k_max):
        a, b = int(tree[i, 0]), int(tree[i, 1])
        parent[root(a)] = n + i
        parent[root(b)] = n + i
    roots = np.fromiter((root(i) for i in range(n)), dtype=np.int64, count=n)
    uniq, labels = np.unique(roots, return_inverse=True)
    group_of_node = {int(node): g for g, node in enumerate(uniq)}
    k = uniq.shape[0]
    onehot = sparse.csr_matrix((np.ones(n, dtype=np.float32), (labels, np.arange(n))), shape=(k, n))
    sums = np.asarray(onehot @ dist, dtype=np.float64)
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    alive = np.ones(k, dtype=bool)
    labels = labels.astype(np.int64)

    scores: dict[int, float] = {}
    cuts: dict[int, np.ndarray] = {}
    current = k
    step = n - k_max
    while current >= max(k_min, 2):
        idx = np.flatnonzero(alive)
        remap = np.full(k, -1, dtype=np.int64)
        remap[idx] = np.arange(idx.shape[0])
        lab = remap[labels]
        scores[current] = _silhouette_from_sums(sums[idx], sizes[idx], lab)
        cuts[current] = lab
        if current == 2 or step >= n - 1:
            break
        ga = group_of_node.pop(int(tree[step, 0]))
        gb = group_of_node.pop(int(tree[step, 1]))
        sums[ga] += sums[gb]
        sizes[ga] += sizes[gb]
        alive[gb] = False
        labels[labels == gb] = ga
        group_of_node[n + step] = ga
        step += 1
        current -= 1
    return scores, cuts


def _relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Map labels onto 0..k-1 (drops empty ids)."""
    uniq, inv = np.unique(labels, return_inverse=True)
    return inv.astype(np.int64), int(uniq.shape[0])


def _centroids(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    onehot = sparse.csr_matrix(
        (np.ones(labels.shape[0], dtype=np.float32), (labels, np.arange(labels.shape[0]))),
        shape=(k, labels.shape[0]),
    )
    return l2_normalize(np.asarray(onehot @ x))


def assign(x: np.ndarray, centroids: np.ndarray, chunk: int = _CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid (by cosine) for every row, computed in blocks to bound memory."""
    n = x.shape[0]
    labels = np.empty(n, dtype=np.int64)
    sims = np.empty(n, dtype=np.float32)
    ct = np.ascontiguousarray(centroids.T, dtype=np.float32)
    for start in range(0, n, chunk):
        block = x[start : start + chunk] @ ct
        labels[start : start + chunk] = block.argmax(axis=1)
        sims[start : start + chunk] = block.max(axis=1)
    return labels, sims


def spherical_kmeans(x: np.ndarray, init: np.ndarray, *, max_iter: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd iterations with cosine similarity from given centroids (deterministic).

    A centroid that loses all its points is re-seeded with the worst-fitting
    point, the usual k-means repair; clusters still empty at the end are dropped.
    """
    cent = l2_normalize(init)
    k = cent.shape[0]
    labels, sims = assign(x, cent)
    for _ in range(max_iter):
        counts = np.bincount(labels, minlength=k)
        new = _centroids(x, labels, k)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            worst = np.argsort(sims, kind="stable")[: empty.size]
            new[empty] = x[worst]
        cent = new
        new_labels, sims = assign(x, cent)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    labels, k = _relabel(labels)
    return labels, _centroids(x, labels, k)


def centre_rows(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Rows minus `mean`, re-normalised, in chunks; rows equal to the mean stay zero."""
    out = np.empty_like(x)
    for start in range(0, x.shape[0], _CHUNK):
        out[start : start + _CHUNK] = l2_normalize(x[start : start + _CHUNK] - mean)
    return out


def smooth_rows(x: np.ndarray, neighbours: int) -> np.ndarray:
    """Each unit row plus the mean of its `neighbours` nearest other rows (by cosine), re-normalised.

    O(s^2) time and memory on the sample (the distance matrix is built anyway). A row's neighbours
    mostly share its topic, so this pulls a topic's phrasings together before the tree is cut.
    """
    s = x.shape[0]
    m = min(neighbours, s - 1)
    if m < 1:
        return x
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    nearest = np.argpartition(-sims, m - 1, axis=1)[:, :m]
    del sims
    return l2_normalize(x + x[nearest].mean(axis=1))


def _mean_direction(sample: np.ndarray) -> np.ndarray | None:
    """The sample's mean vector, or None when centring would leave nothing (all items alike)."""
    if sample.shape[0] < 3:
        return None
    mean = sample.mean(axis=0)
    spread = float(np.linalg.norm(sample - mean, axis=1).mean())
    return mean.astype(np.float32) if spread > 1e-3 else None


def cluster_vectors(
    vectors: np.ndarray,
    *,
    random_state: int = 0,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    k_range: tuple[int, int] | None = None,
    knee_tolerance: float = KNEE_TOLERANCE,
    smooth_neighbours: int = SMOOTH_NEIGHBOURS,
) -> Clustering:
    """Group rows of `vectors` (any scale; normalised here) with k chosen by the silhouette knee."""
    x = l2_normalize(vectors)
    n = x.shape[0]
    if n == 0:
        return Clustering(np.zeros(0, np.int64), np.zeros((0, x.shape[1]), np.float32), 0, float("nan"), 0)

    rng = np.random.default_rng(random_state)
    idx = np.sort(rng.choice(n, size=sample_size, replace=False)) if n > sample_size else None
    mean = _mean_direction(x[idx] if idx is not None else x)
    if mean is not None:
        x = centre_rows(x, mean)
    sample = x[idx] if idx is not None else x
    s = sample.shape[0]
    neighbours = min(smooth_neighbours, s // 20)  # a tiny set has too few same-topic neighbours
    if neighbours > 0:
        sample = smooth_rows(sample, neighbours)
        if idx is None:
            x = sample
    k_min, k_max = k_range if k_range is not None else k_bounds(s)
    k_max = min(k_max, s)
    if k_max < 2:
        labels = np.zeros(n, dtype=np.int64)
        return Clustering(labels, _centroids(x, labels, 1), 1, float("nan"), s, centre=mean)

    dist = np.clip(1.0 - sample @ sample.T, 0.0, 2.0).astype(np.float32)
    np.fill_diagonal(dist, 0.0)
    # Ward on unit vectors = minimum-variance merging under (half squared) cosine distance.
    euclid = np.sqrt(2.0 * dist.astype(np.float64))
    tree = linkage(squareform(euclid, checks=False), method="ward")
    del euclid
    ward_scores, cuts = _silhouettes_along_tree(tree, dist, max(k_min, 2), k_max)
    valid = {k: v for k, v in ward_scores.items() if not math.isnan(v)}
    if not valid:
        labels = np.zeros(n, dtype=np.int64)
        return Clustering(labels, _centroids(x, labels, 1), 1, float("nan"), s, ward_scores, mean)
    top = max(valid.values())
    # A non-positive best means no cut separates anything; then the best cut is as good as any.
    floor = top * (1.0 - knee_tolerance) if top > 0 else top
    k = min(kk for kk, v in valid.items() if v >= floor)
    labels, cent = spherical_kmeans(sample, _centroids(sample, cuts[k], k))
    score = cosine_silhouette(dist, labels) if cent.shape[0] >= 2 else float("nan")
    k = cent.shape[0]

    if n > s:
        labels, cent = spherical_kmeans(x, cent, max_iter=10)
        k = cent.shape[0]
    return Clustering(labels, cent, k, score, s, ward_scores, mean)
