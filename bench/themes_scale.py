"""Digest build over 100,000 stored items: wall time and peak memory.

    python bench/themes_scale.py [--n 100000] [--mode matrix|tuples|tfidf|all]

Items are synthesised from the CLINC texts: each of the n items copies one of
the 1,600 texts (so texts repeat, as real feedback does) and gets that text's
stored embedding plus Gaussian noise (cosine to the clean vector ~0.86), so
there are ~40 blurred intents to find. Base vectors are the local model's
(cached in bench/out/, computed in a child process so torch is not in this
process's memory), or TF-IDF ones if the `local` extra is missing.

Each mode runs in a fresh child process so its peak RSS (`ru_maxrss`) is its own:

* matrix – stored vectors passed as one float32 matrix (`find_themes(vectors=...)`,
           what the digest gets from `unpack_vectors` on the DB blobs);
* tuples – stored vectors inside each `ThemeItem.embedding` (tuple of floats);
* tfidf  – no stored vectors: the TF-IDF fallback embeds the 100k texts itself.

Peak RSS includes the interpreter, numpy/scipy/sklearn and the items themselves.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "clinc150-themes.csv"
CACHE = ROOT / "bench" / "out"
NOISE_SIGMA = 0.03  # per dimension; for 384 dims the noise norm is ~0.59


def _texts(csv_path: Path) -> tuple[list[str], list[str]]:
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def base_vectors(csv_path: Path) -> tuple[np.ndarray, str]:
    from bot.themes import local_available

    cache = CACHE / "clinc_local_vectors.npy"
    if not cache.exists() and local_available():
        CACHE.mkdir(parents=True, exist_ok=True)
        code = (
            "import sys, numpy as np; sys.path.insert(0, sys.argv[1]);"
            "from bench.themes_scale import _texts; from bot.themes import LocalEmbedder;"
            "from pathlib import Path;"
            "np.save(sys.argv[3], LocalEmbedder().embed(_texts(Path(sys.argv[2]))[0]))"
        )
        subprocess.run([sys.executable, "-c", code, str(ROOT), str(csv_path), str(cache)], check=True)
    if cache.exists():
        return np.load(cache), "local:all-MiniLM-L6-v2"
    from bot.themes import TfidfEmbedder

    return TfidfEmbedder().embed(_texts(csv_path)[0]), "tfidf-lsa-100"


def child(mode: str, n: int, csv_path: Path, seed: int) -> dict[str, object]:
    from bot.themes import ThemeItem, find_themes_run
    from bot.themes.metrics import labels_from_themes, score

    texts, labels = _texts(csv_path)
    base, source = base_vectors(csv_path)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(texts), size=n)
    # Built in float32 blocks so the set-up does not out-peak find_themes itself.
    vectors = np.empty((n, base.shape[1]), dtype=np.float32)
    for start in range(0, n, 10_000):
        block = base[pick[start : start + 10_000]] + rng.standard_normal(
            (min(10_000, n - start), base.shape[1]), dtype=np.float32
        ) * np.float32(NOISE_SIGMA)
        vectors[start : start + 10_000] = block / np.linalg.norm(block, axis=1, keepdims=True)
    truth = [labels[i] for i in pick]
    passed: np.ndarray | None
    embedder = None
    if mode == "tfidf":
        # No stored vectors at all: the TF-IDF fallback is fitted on the 100k texts.
        from bot.themes import TfidfEmbedder

        items = [ThemeItem(id=i, text=texts[j]) for i, j in enumerate(pick)]
        del vectors
        passed, embedder, source = None, TfidfEmbedder(), "tfidf-lsa-100 (fitted in the run)"
    elif mode == "tuples":
        items = [
            ThemeItem(id=i, text=texts[j], embedding=tuple(vectors[i].tolist())) for i, j in enumerate(pick)
        ]
        del vectors
        passed = None
    else:
        items = [ThemeItem(id=i, text=texts[j]) for i, j in enumerate(pick)]
        passed = vectors
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t0 = time.perf_counter()
    run = find_themes_run(items, embedder=embedder, max_themes=12, random_state=seed, vectors=passed)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    s = score(truth, run.clustering.labels)
    shown = score(truth, labels_from_themes(run.themes, [it.id for it in items]))
    return {
        "mode": mode,
        "n": n,
        "vectors": source,
        "dim": int(run.clustering.centroids.shape[1]),
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_mb),
        "rss_before_find_mb": round(rss_before),
        "k": run.clustering.k,
        "purity": round(s.purity, 3),
        "nmi": round(s.nmi, 3),
        "themes_shown": len(run.themes),
        "purity_12_plus_other": round(shown.purity, 3),
        "top_titles": [t.title for t in run.themes[:5]],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--mode", choices=("matrix", "tuples", "tfidf", "all"), default="all")
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        print(json.dumps(child(args.mode, args.n, args.csv, args.seed)))
        return 0

    base_vectors(args.csv)  # fill the cache before timing anything
    modes = ("matrix", "tuples", "tfidf") if args.mode == "all" else (args.mode,)
    for mode in modes:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--mode",
                mode,
                "--n",
                str(args.n),
                "--csv",
                str(args.csv),
                "--seed",
                str(args.seed),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['mode']:7s} n={r['n']} {r['vectors']} dim={r['dim']}: find_themes {r['seconds']:.2f}s, "
            f"peak RSS {r['peak_rss_mb']} MB (before find_themes {r['rss_before_find_mb']} MB); "
            f"k={r['k']} purity={r['purity']} NMI={r['nmi']}; {r['themes_shown']} themes shown "
            f"(purity with 12 + Other: {r['purity_12_plus_other']})"
        )
        print(f"        top themes: {r['top_titles']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
