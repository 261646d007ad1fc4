"""Duplicate suggestion at capture: precision and recall of "is a duplicate" by cosine threshold.

    python bench/duplicates.py [--csv DEV.csv] [--sets DIR] [--heldout DIR] [--embedders static,onnx,local]

Labelled pairs come from the same labelled sets as bench/themes.py (same intent = duplicate,
different intent = not). Items arrive one by one in a seeded random order, as captures would;
for each new item the embedder's vectors give its 3 most similar *earlier* items, and those whose
cosine is >= t are suggested (the product shows at most three).

* precision(t): suggested pairs that are duplicates / all suggested pairs;
* recall(t): items that got at least one right suggestion / items that had an earlier duplicate.

The threshold chosen per embedder is the lowest t whose precision on the TUNING sets (dev + --sets,
pooled) is >= 0.9; held-out sets are then reported at that threshold, never used to choose it.
Those thresholds are `bot/themes/duplicates.py`'s DUPLICATE_THRESHOLDS. Caveat: in these sets every
intent has 25-100 items, so most new items do have a duplicate; in a real feedback stream fewer do,
and precision at the same threshold is lower.

`--sparse` also measures that: streams drawn from each set where 70% of the intents say something once,
20% twice and 10% three times (so most items have no duplicate), 200 seeds pooled, scored at the
product's thresholds (`SUGGESTION_THRESHOLDS` in bot/features/feedback/merging.py) and at the research ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.themes import DEFAULT_CSV, load, make_embedder  # noqa: E402
from bot.features.feedback.merging import SUGGESTION_THRESHOLDS  # noqa: E402
from bot.themes.duplicates import DUPLICATE_THRESHOLDS, MAX_SUGGESTIONS, TARGET_PRECISION  # noqa: E402

THRESHOLDS = np.round(np.arange(0.50, 0.981, 0.01), 2)


def neighbour_pairs(
    vectors: np.ndarray, labels: list[str], seed: int
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """(cosines, is-duplicate) of each new item's top-3 earlier neighbours; items that had a duplicate."""
    order = np.random.default_rng(seed).permutation(len(labels))
    x = vectors[order]
    lab = np.asarray(labels)[order]
    sims = x @ x.T
    sims[np.triu_indices_from(sims)] = -np.inf  # only earlier items
    cos: list[np.ndarray] = []
    dup: list[np.ndarray] = []
    owner: list[np.ndarray] = []
    for i in range(1, len(lab)):
        row = sims[i, :i]
        top = np.argsort(-row, kind="stable")[:MAX_SUGGESTIONS]
        cos.append(row[top])
        dup.append(lab[top] == lab[i])
        owner.append(np.full(top.shape[0], i))
    had = sum(1 for i in range(1, len(lab)) if (lab[:i] == lab[i]).any())
    return np.concatenate(cos), np.concatenate(dup), had, np.concatenate(owner)


def sparse_pairs(vectors: np.ndarray, labels: list[str], seed: int) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """neighbour_pairs over a stream where most intents are said once (70%), some twice (20%) or thrice."""
    rng = np.random.default_rng(1000 + seed)
    lab = np.asarray(labels)
    keep: list[int] = []
    for intent in sorted(set(labels)):
        members = np.flatnonzero(lab == intent)
        k = int(rng.choice([1, 2, 3], p=[0.7, 0.2, 0.1]))
        keep += list(rng.choice(members, size=min(k, len(members)), replace=False))
    idx = np.asarray(sorted(keep))
    return neighbour_pairs(vectors[idx], [labels[i] for i in idx], seed)


def point_at(points: list[dict[str, float]], t: float) -> dict[str, float]:
    return min(points, key=lambda p: abs(p["t"] - t))


def curve(pairs: list[tuple[np.ndarray, np.ndarray, int, np.ndarray]]) -> list[dict[str, float]]:
    out = []
    for t in THRESHOLDS:
        shown = right = found = had = 0
        for cos, dup, n_had, owner in pairs:
            keep = cos >= t
            shown += int(keep.sum())
            right += int((keep & dup).sum())
            found += int(np.unique(owner[keep & dup]).shape[0])
            had += n_had
        out.append({
            "t": float(t),
            "precision": right / shown if shown else float("nan"),
            "recall": found / had if had else float("nan"),
            "suggested": shown,
        })
    return out


def pick(points: list[dict[str, float]]) -> dict[str, float] | None:
    ok = [p for p in points if p["suggested"] and p["precision"] >= TARGET_PRECISION]
    return min(ok, key=lambda p: p["t"]) if ok else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--sets", type=Path)
    ap.add_argument("--heldout", type=Path)
    ap.add_argument("--embedders", default="static,onnx,local")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--sparse", action="store_true", help="also score sparse streams (few true duplicates)")
    ap.add_argument("--sparse-seeds", type=int, default=200)
    args = ap.parse_args(argv)
    tuning = ([args.csv] if args.csv.exists() else []) + (sorted(args.sets.glob("*.csv")) if args.sets else [])
    heldout = sorted(args.heldout.glob("*.csv")) if args.heldout else []
    # The 8x40 and 20x25 Banking77 subsets are inside banking77-all: pairs from them add nothing new.
    heldout = [p for p in heldout if "x" not in p.stem.rsplit("-", 1)[-1]] or heldout
    data = {p: load(p) for p in tuning + heldout}

    results: dict[str, Any] = {}
    print("| embedder | sets | threshold (precision >= 0.9 on tuning sets) | precision | recall | "
          "precision / recall at 0.05 lower | at 0.05 higher |")
    print("|---|---|---|---|---|---|---|")
    for kind in [k.strip() for k in args.embedders.split(",") if k.strip()]:
        emb = make_embedder(kind)
        if emb is None:
            continue
        pairs = {p: neighbour_pairs(emb.embed(data[p][0]), data[p][1], args.seed) for p in data}
        tune_curve = curve([pairs[p] for p in tuning])
        chosen = pick(tune_curve)
        results[emb.name] = {"tuning": tune_curve, "chosen": chosen}
        if chosen is None:
            print(f"| {emb.name} | tuning | none reaches {TARGET_PRECISION} | | | | |")
            continue
        t = chosen["t"]
        by_t = {round(p["t"], 2): p for p in tune_curve}
        lo, hi = by_t.get(round(t - 0.05, 2)), by_t.get(round(t + 0.05, 2))
        def pr(p: dict[str, float] | None) -> str:
            return f"{p['precision']:.3f} / {p['recall']:.3f}" if p else "–"
        print(f"| {emb.name} | tuning ({len(tuning)}) | {t:.2f} | {chosen['precision']:.3f} | "
              f"{chosen['recall']:.3f} | {pr(lo)} | {pr(hi)} |")
        for p in heldout:
            hc = {round(q["t"], 2): q for q in curve([pairs[p]])}
            at = hc[round(t, 2)]
            results[emb.name][p.stem] = list(hc.values())
            print(f"| {emb.name} | held out: {p.stem} | {t:.2f} | {at['precision']:.3f} | {at['recall']:.3f} | "
                  f"{pr(hc.get(round(t - 0.05, 2)))} | {pr(hc.get(round(t + 0.05, 2)))} |")
            own = pick(list(hc.values()))  # for information only: what this set alone would need
            if own:
                print(f"| {emb.name} | held out: {p.stem}, its own 0.9 point (not used) | {own['t']:.2f} | "
                      f"{own['precision']:.3f} | {own['recall']:.3f} | | |")
        if args.sparse:
            vecs = {p: emb.embed(data[p][0]) for p in data}
            for p in data:
                sparse = curve([sparse_pairs(vecs[p], data[p][1], seed) for seed in range(args.sparse_seeds)])
                results[emb.name][f"sparse:{p.stem}"] = sparse
                for label, t in (("product", SUGGESTION_THRESHOLDS.get(emb.name)),
                                 ("research", DUPLICATE_THRESHOLDS.get(emb.name))):
                    if t is not None:
                        q = point_at(sparse, t)
                        print(f"| {emb.name} | sparse stream: {p.stem} ({label} threshold) | {t:.2f} | "
                              f"{q['precision']:.3f} | {q['recall']:.3f} | {q['suggested']} suggested | |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
