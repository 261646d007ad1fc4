"""Imports every module that registers worker handlers (the registry is filled on import)."""

from bot.worker import events, feedback_jobs, home, lifecycle, notify  # noqa: F401
