"""The LLM prompts; shipped inside the installed package as `bot.prompts` (see pyproject.toml)."""
