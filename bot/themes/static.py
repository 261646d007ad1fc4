"""The default embedder: static token vectors distilled from all-MiniLM-L6-v2, shipped in the package.

A sentence vector is the mean of its WordPiece tokens' rows (model2vec's "static embeddings"): no
neural network runs at all, so 3,000 feedback items embed in ~0.1 s on one core with numpy alone,
and the vectors depend on the text only (they can be stored and compared across digests, unlike
TF-IDF's). The rows were distilled from the same MiniLM model the `local` extra runs
(`tools/distill-static.sh` records the exact command); the file is package data, ~7 MB.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from bot.themes.text import clean_text
from bot.themes.wordpiece import WordPiece

MODEL_FILE = "minilm-static-256.npz"
MAX_TOKENS = 512  # as model2vec: a very long message is judged by its first 512 tokens


def model_path() -> Path:
    return Path(str(resources.files("bot.themes") / "models" / MODEL_FILE))


def static_available() -> bool:
    return model_path().is_file()


class StaticEmbedder:
    """Mean of distilled MiniLM token vectors; numpy only, loaded lazily (~0.1 s)."""

    corpus_dependent = False

    def __init__(self, path: str | Path | None = None) -> None:
        self._path = Path(path) if path is not None else model_path()
        self._q: np.ndarray | None = None
        self._scale: np.ndarray | None = None
        self._tokenizer: WordPiece | None = None
        stem = self._path.stem  # minilm-static-256
        self.dim = int(stem.rsplit("-", 1)[-1]) if stem.rsplit("-", 1)[-1].isdigit() else 0
        self.name = f"static:{stem}"

    def _load(self) -> tuple[np.ndarray, np.ndarray, WordPiece]:
        if self._q is None or self._scale is None or self._tokenizer is None:
            with np.load(self._path, allow_pickle=False) as data:
                vocab = bytes(data["vocab"]).decode("utf-8").split("\n")
                self._q = np.ascontiguousarray(data["q"])
                self._scale = data["scale"].astype(np.float32)
            if self._q.shape[0] != len(vocab):
                raise ValueError(f"{self._path}: {len(vocab)} tokens but {self._q.shape[0]} rows")
            self._tokenizer = WordPiece(vocab)
            self.dim = int(self._q.shape[1])
        return self._q, self._scale, self._tokenizer

    def token_ids(self, text: str) -> list[int]:
        tok = self._load()[2]
        return [i for i in tok.encode(clean_text(text)) if i != tok.unk_id][:MAX_TOKENS]

    def embed(self, texts: list[str]) -> np.ndarray:
        q, scale, _ = self._load()
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        ids = [self.token_ids(t) for t in texts]
        counts = np.fromiter((len(i) for i in ids), dtype=np.int64, count=n)
        rows = np.flatnonzero(counts)
        if rows.size == 0:
            return out
        flat = np.fromiter((t for i in ids for t in i), dtype=np.int64, count=int(counts.sum()))
        vecs = q[flat].astype(np.float32)
        vecs *= scale[flat, None]
        starts = np.concatenate(([0], np.cumsum(counts[rows])[:-1]))
        sums = np.add.reduceat(vecs, starts, axis=0)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        out[rows] = sums / np.where(norms > 0, norms, 1.0)
        return out
