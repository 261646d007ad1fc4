"""all-MiniLM-L6-v2 on ONNX Runtime: the local model's quality without PyTorch.

`tools/export_onnx.py` writes the model (int8 weights, ~23 MB) and its vocabulary at build time
(the Docker image does this in its build stage). At run time this needs `onnxruntime` (the `onnx`
extra) and numpy: tokenising is `bot/themes/wordpiece.py`, pooling is the mean over real tokens
followed by L2 normalisation, exactly as the sentence-transformers model is configured.
"""

from __future__ import annotations

import importlib.util
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from bot.themes.text import clean_text
from bot.themes.wordpiece import WordPiece

MAX_SEQ_LENGTH = 256  # all-MiniLM-L6-v2's sentence_bert_config.json


def default_model_dir() -> Path:
    """LOOPLINE_ONNX_MODEL if set, else the copy exported into the package at build time."""
    configured = os.environ.get("LOOPLINE_ONNX_MODEL")
    if configured:
        return Path(configured)
    return Path(str(resources.files("bot.themes") / "models" / "minilm-onnx"))


def onnx_available(model_dir: Path | None = None) -> bool:
    d = model_dir or default_model_dir()
    try:
        has_runtime = importlib.util.find_spec("onnxruntime") is not None
    except (ImportError, ValueError):
        has_runtime = False
    return has_runtime and (d / "model.onnx").is_file() and (d / "vocab.txt").is_file()


class OnnxEmbedder:
    corpus_dependent = False
    MODEL_NAME = "all-MiniLM-L6-v2"

    def __init__(self, model_dir: str | Path | None = None, *, batch_size: int = 32, threads: int = 0) -> None:
        self._dir = Path(model_dir) if model_dir is not None else default_model_dir()
        if not onnx_available(self._dir):
            raise ImportError(
                f"OnnxEmbedder needs onnxruntime (the 'onnx' extra) and an exported model in {self._dir} "
                "(python tools/export_onnx.py --out DIR)"
            )
        self.batch_size = batch_size
        self.threads = threads  # 0 = onnxruntime's default (one per core)
        self.dim = 384
        self.name = f"onnx:{self.MODEL_NAME}"
        self._session: Any = None
        self._tok: WordPiece | None = None

    def _load(self) -> tuple[Any, WordPiece]:
        if self._session is None or self._tok is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            if self.threads:
                opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            self._session = ort.InferenceSession(
                str(self._dir / "model.onnx"), sess_options=opts, providers=["CPUExecutionProvider"]
            )
            vocab = (self._dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
            if vocab and vocab[-1] == "":
                vocab.pop()
            self._tok = WordPiece(vocab)
        return self._session, self._tok

    def embed(self, texts: list[str]) -> np.ndarray:
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        session, tok = self._load()
        cls, sep = tok.ids["[CLS]"], tok.ids["[SEP]"]
        seqs = [[cls, *tok.encode(clean_text(t))[: MAX_SEQ_LENGTH - 2], sep] for t in texts]
        # Similar lengths together: padding is wasted work.
        order = sorted(range(n), key=lambda i: len(seqs[i]))
        for start in range(0, n, self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(seqs[i]) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                ids[row, : len(seqs[i])] = seqs[i]
                mask[row, : len(seqs[i])] = 1
            hidden = session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )[0]
            summed = np.einsum("bsd,bs->bd", hidden, mask.astype(hidden.dtype))
            pooled = summed / mask.sum(axis=1, keepdims=True)
            out[batch] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out
