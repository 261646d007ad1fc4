"""Optional LLM naming of offline-found themes (see `bot.llm.naming`)."""

from bot.llm.naming import LlmDigestText, ThemeNamer
from bot.llm.prompts import load_prompt
from bot.llm.schemas import HeadlineText, ThemeText

__all__ = ["HeadlineText", "LlmDigestText", "ThemeNamer", "ThemeText", "load_prompt"]
