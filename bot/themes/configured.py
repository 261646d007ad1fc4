"""The embedder a configuration asks for (LOOPLINE_EMBEDDER and the OpenAI settings), one per process:
the local model takes seconds to load. Every feature that embeds feedback (digests, and any other that
compares items) shares it from here."""

from __future__ import annotations

import threading

from bot.core.settings import Settings
from bot.themes.embedders import Embedder, default_embedder

_EMBEDDERS: dict[tuple[str, str | None, str], Embedder] = {}
_LOCK = threading.Lock()


def embedder_for(settings: Settings) -> Embedder:
    """A new embedder for this configuration."""
    return default_embedder(settings.loopline_embedder, openai_api_key=settings.secret("openai_api_key"),
                            openai_base_url=settings.openai_base_url,
                            embedding_model=settings.loopline_embedding_model)


def cached_embedder(settings: Settings) -> Embedder:
    """One embedder per configuration per process."""
    key = (settings.loopline_embedder, settings.openai_base_url, settings.loopline_embedding_model)
    with _LOCK:
        if key not in _EMBEDDERS:
            _EMBEDDERS[key] = embedder_for(settings)
        return _EMBEDDERS[key]
