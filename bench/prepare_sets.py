"""Build the labelled CSVs (`text,label`) that bench/themes.py and bench/duplicates.py read.

    python bench/prepare_sets.py --src DIR --out DIR

None of these data sets is committed: they are public, but third-party. Put their files in `--src`
(paths below are inside their public GitHub repositories) and this writes one CSV per set to `--out`:

| file written | from | licence | role |
|---|---|---|---|
| `banking77-all.csv` (3,080 / 77 intents), `banking77-8x40.csv`, `banking77-20x25.csv` | PolyAI-LDN/task-specific-datasets `banking_data/test.csv` -> `banking77_test.csv` | CC BY 4.0 | held out: never tuned on |
| `clinc150-other40.csv` (1,600 / 40 intents not in the dev set) | clinc/oos-eval `data/data_full.json` -> `clinc150_data_full.json` | CC BY 3.0 | tuning |
| `hwu64.csv` (<= 40 per intent, 64 intents) | xliuhw/NLU-Evaluation-Data `CrossValidation/.../KFold_N/testset/csv/*.csv` -> `hwu64/N_<intent>.csv` | CC BY 4.0 | tuning |
| `stackoverflow20.csv` (2,000 titles / 20 tags) | jacoxu/StackOverflow `rawText/{title,label}_StackOverflow.txt` -> `so_titles.txt`, `so_labels.txt` | Kaggle data, research use | tuning |

Subsets are deterministic: intents in sorted order, every n-th one, first texts of each in file order.
The dev set (shared/data/clinc150-themes.csv) is read only to leave its intents out of clinc150-other40.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV_CSV = ROOT.parent / "shared" / "data" / "clinc150-themes.csv"


def _write(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    print(f"{path.name}: {len(rows)} texts, {len({r[1] for r in rows})} labels")


def _subset(by_label: dict[str, list[str]], n_labels: int | None, per_label: int | None) -> list[tuple[str, str]]:
    labels = sorted(by_label)
    if n_labels is not None:
        step = len(labels) / n_labels
        labels = [labels[int(i * step)] for i in range(n_labels)]
    return [(t, lab) for lab in labels for t in by_label[lab][:per_label]]


def banking77(src: Path, out: Path) -> None:
    by_label: dict[str, list[str]] = defaultdict(list)
    with (src / "banking77_test.csv").open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            by_label[r["category"]].append(r["text"])
    _write(out / "banking77-all.csv", _subset(by_label, None, None))
    _write(out / "banking77-8x40.csv", _subset(by_label, 8, 40))
    _write(out / "banking77-20x25.csv", _subset(by_label, 20, 25))


def clinc_other(src: Path, out: Path, dev_csv: Path) -> None:
    with dev_csv.open(newline="", encoding="utf-8") as f:
        dev = {r["label"] for r in csv.DictReader(f)}
    data = json.loads((src / "clinc150_data_full.json").read_text(encoding="utf-8"))
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in data["test"] + data["val"] + data["train"]:
        if label not in dev:
            by_label[label].append(text)
    _write(out / "clinc150-other40.csv", _subset(by_label, 40, 40))


def hwu64(src: Path, out: Path) -> None:
    by_label: dict[str, list[str]] = defaultdict(list)
    for path in sorted((src / "hwu64").glob("*.csv"), key=lambda p: (int(p.name.split("_")[0]), p.name)):
        with path.open(newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f, delimiter=";"):
                text = (r.get("answer_from_user") or "").strip().strip("<>").strip()
                if text:
                    by_label[f"{r['scenario']}_{r['intent']}"].append(text)
    _write(out / "hwu64.csv", _subset(by_label, None, 40))


def stackoverflow(src: Path, out: Path) -> None:
    titles = (src / "so_titles.txt").read_text(encoding="utf-8").splitlines()
    labels = (src / "so_labels.txt").read_text(encoding="utf-8").splitlines()
    by_label: dict[str, list[str]] = defaultdict(list)
    for t, lab in zip(titles, labels, strict=True):
        by_label[f"tag{int(lab):02d}"].append(t.strip())
    _write(out / "stackoverflow20.csv", _subset(by_label, None, 100))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dev", type=Path, default=DEV_CSV)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    banking77(args.src, args.out)
    clinc_other(args.src, args.out, args.dev)
    hwu64(args.src, args.out)
    stackoverflow(args.src, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
