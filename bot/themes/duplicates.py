"""Thresholds for "this new item looks like an earlier one" (duplicate suggestions at capture).

Measured by bench/duplicates.py: items of labelled intent sets arrive one by one; each new item's
three most similar earlier items are suggested when their cosine is at least the threshold, and a
suggestion is right when both have the same intent. Each threshold is the lowest at which precision
reached 0.9 on the tuning sets (the dev set, clinc150-other40, hwu64, stackoverflow20), then
checked on held-out Banking77; the recall it gives is in README "Duplicates". Thresholds belong to
one embedder's vector space: vectors of another model need their own (None: no suggestion).
"""

from __future__ import annotations

MAX_SUGGESTIONS = 3
TARGET_PRECISION = 0.9

# Embedder.name -> cosine threshold (bench/duplicates.py, seed 0). Precision / recall on the tuning
# sets at that threshold, then on held-out Banking77 (3,080 fine-grained banking intents, where
# neighbours of another intent are much closer: precision falls short of 0.9 there, see README):
DUPLICATE_THRESHOLDS: dict[str, float] = {
    "static:minilm-static-256": 0.77,  # tuning 0.903 / 0.410; Banking77 0.692 / 0.741
    "onnx:all-MiniLM-L6-v2": 0.62,  # tuning 0.904 / 0.549; Banking77 0.775 / 0.872
    "local:all-MiniLM-L6-v2": 0.61,  # tuning 0.903 / 0.563; Banking77 0.783 / 0.877
}


def duplicate_threshold(embedder_name: str) -> float | None:
    """The measured threshold for vectors of this embedder, or None if it was never measured."""
    return DUPLICATE_THRESHOLDS.get(embedder_name)
