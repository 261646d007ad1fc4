"""Offline theme finding for the weekly digest.

`find_themes(items)` groups feedback by meaning with an automatically chosen
number of groups and names each group from its own words. Embedders are
pluggable (`StaticEmbedder`, the default, `LocalEmbedder`, `OnnxEmbedder`,
`TfidfEmbedder`, `OpenAIEmbedder`).
"""

from bot.themes.cluster import Clustering, cluster_vectors
from bot.themes.duplicates import DUPLICATE_THRESHOLDS, duplicate_threshold
from bot.themes.embedders import (
    Embedder,
    LocalEmbedder,
    OpenAIEmbedder,
    TfidfEmbedder,
    default_embedder,
    get_embedder,
    is_storable,
    l2_normalize,
    local_available,
    pack_vector,
    unpack_vector,
    unpack_vectors,
)
from bot.themes.finder import OTHER_TITLE, ThemeRun, find_themes, find_themes_run
from bot.themes.onnx_minilm import OnnxEmbedder, onnx_available
from bot.themes.static import StaticEmbedder, static_available
from bot.themes.types import Theme, ThemeItem

__all__ = [
    "DUPLICATE_THRESHOLDS",
    "OTHER_TITLE",
    "Clustering",
    "Embedder",
    "LocalEmbedder",
    "OnnxEmbedder",
    "OpenAIEmbedder",
    "StaticEmbedder",
    "TfidfEmbedder",
    "Theme",
    "ThemeItem",
    "ThemeRun",
    "cluster_vectors",
    "default_embedder",
    "duplicate_threshold",
    "find_themes",
    "find_themes_run",
    "get_embedder",
    "is_storable",
    "l2_normalize",
    "local_available",
    "onnx_available",
    "pack_vector",
    "static_available",
    "unpack_vector",
    "unpack_vectors",
]
