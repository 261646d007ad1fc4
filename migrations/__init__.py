"""Alembic's migrations; shipped inside the installed package as `bot.migrations` (see pyproject.toml)."""
