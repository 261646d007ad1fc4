"""Theme-finding quality on labelled sets, number of themes NOT given, for each embedder.

    python bench/themes.py [--csv DEV.csv] [--sets DIR] [--heldout DIR]
                           [--embedders static,onnx,local,tfidf] [--runs 3] [--json OUT]

Sets are CSVs with columns `text,label` (bench/prepare_sets.py builds them from public data sets):
`--csv` is the dev set (default: shared/data/clinc150-themes.csv), `--sets` a folder of further
sets used while tuning, `--heldout` a folder of sets never tuned on (reported in their own table).

For each embedder and set, side by side:

* `themes found / true` and purity, NMI, ARI of `find_themes(max_themes=None)`: k found by the
  code; groups below the minimum theme size are merged into "Other", which is scored as one more
  group (only its majority label counts as right), so it can only lower purity;
* the baseline: scikit-learn k-means *told* the true number of labels, on the same vectors;
* seconds for 3,000 items: embedding plus `find_themes`, model load excluded (reported apart),
  the median of `--runs` runs on the first 3,000 texts of all sets together.
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

from bot.themes import ThemeItem, find_themes_run, get_embedder  # noqa: E402
from bot.themes.embedders import Embedder  # noqa: E402
from bot.themes.metrics import Scores, labels_from_themes, score  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "clinc150-themes.csv"
TIMING_ITEMS = 3000


def load(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r.get("label") or r["category"] for r in rows]


def true_k_baseline(vectors: np.ndarray, labels: list[str], seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=len(set(labels)), n_init=10, random_state=seed).fit_predict(vectors)


def make_embedder(kind: str) -> Embedder | None:
    try:
        return get_embedder(kind)
    except ImportError as exc:
        print(f"{kind}: skipped ({exc})\n")
        return None


def time_3000(emb: Embedder, texts: list[str], runs: int, seed: int) -> float:
    items = [ThemeItem(id=i, text=t) for i, t in enumerate(texts)]
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        find_themes_run(items, embedder=emb, max_themes=None, random_state=seed)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def evaluate(emb: Embedder, texts: list[str], labels: list[str], seed: int) -> dict[str, Any]:
    items = [ThemeItem(id=i, text=t) for i, t in enumerate(texts)]
    vectors = emb.embed(texts)
    run = find_themes_run(items, max_themes=None, random_state=seed, vectors=vectors)
    themed = score(labels, labels_from_themes(run.themes, [it.id for it in items]))
    base = score(labels, true_k_baseline(vectors, labels, seed))
    return {
        "n": len(texts),
        "true_k": len(set(labels)),
        "clusters": vars(score(labels, run.clustering.labels)),
        "themes": vars(themed),
        "other_items": next((t.count for t in run.themes if t.title == "Other"), 0),
        "kmeans_true_k": vars(base),
        "titles": [t.title for t in run.themes[:5]],
    }


def table(title: str, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
    print(f"\n### {title}\n")
    print("| set | embedder | themes found / true | purity | NMI | ARI | k-means given true k: purity / NMI / ARI |")
    print("|---|---|---|---|---|---|---|")
    for set_name, emb_name, r in rows:
        t, b = Scores(**r["themes"]), Scores(**r["kmeans_true_k"])
        print(
            f"| {set_name} | {emb_name} | {t.k} / {r['true_k']} | {t.purity:.3f} | {t.nmi:.3f} | {t.ari:.3f} "
            f"| {b.purity:.3f} / {b.nmi:.3f} / {b.ari:.3f} |"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="the dev set (text,label)")
    ap.add_argument("--sets", type=Path, help="folder of further *.csv sets used for tuning")
    ap.add_argument("--heldout", type=Path, help="folder of *.csv sets never tuned on")
    ap.add_argument("--embedders", default="static,onnx,local,tfidf")
    ap.add_argument("--runs", type=int, default=3, help="timing runs (the median is reported)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)

    groups: dict[str, list[Path]] = {"tuning": [], "held out": []}
    if args.csv.exists():
        groups["tuning"].append(args.csv)
    else:
        print(f"no dev set at {args.csv}", file=sys.stderr)
    if args.sets:
        groups["tuning"] += sorted(args.sets.glob("*.csv"))
    if args.heldout:
        groups["held out"] += sorted(args.heldout.glob("*.csv"))
    data = {p: load(p) for ps in groups.values() for p in ps}
    if not data:
        return 2
    pool = [t for texts, _ in data.values() for t in texts]
    timing_texts = (pool * (TIMING_ITEMS // len(pool) + 1))[:TIMING_ITEMS]

    results: dict[str, Any] = {"sets": {}, "timing": {}}
    rows: dict[str, list[tuple[str, str, dict[str, Any]]]] = {g: [] for g in groups}
    for kind in [k.strip() for k in args.embedders.split(",") if k.strip()]:
        emb = make_embedder(kind)
        if emb is None:
            continue
        t0 = time.perf_counter()
        emb.embed(["warm-up: loads the model"])
        load_s = time.perf_counter() - t0
        secs = time_3000(emb, timing_texts, args.runs, args.seed)
        results["timing"][emb.name] = {"load_s": round(load_s, 2), "seconds_3000": round(secs, 2)}
        print(f"{emb.name}: load {load_s:.2f}s; {TIMING_ITEMS} items embedded and themed in {secs:.2f}s "
              f"(median of {args.runs})", flush=True)
        for group, paths in groups.items():
            for p in paths:
                r = evaluate(emb, *data[p], args.seed)
                r["group"] = group
                results["sets"].setdefault(p.stem, {})[emb.name] = r
                rows[group].append((p.stem, emb.name, r))
                print(f"  {p.stem}: {r['themes']['k']}/{r['true_k']} themes, NMI {r['themes']['nmi']:.3f}; "
                      f"titles: {r['titles'][:3]}", flush=True)
    for group in groups:
        if rows[group]:
            table(f"{group} sets", sorted(rows[group], key=lambda r: r[0]))
    print("\n| embedder | model load s | s per 3,000 items (embed + themes, median) |\n|---|---|---|")
    for name, t in results["timing"].items():
        print(f"| {name} | {t['load_s']:.2f} | {t['seconds_3000']:.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
