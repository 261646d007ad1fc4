"""Imports every module that registers worker handlers (the registry is filled on import)."""

from bot.worker import announcements as _announcements  # noqa: F401
from bot.worker import audience as _audience  # noqa: F401
from bot.worker import decisions as _decisions  # noqa: F401
from bot.worker import digests as _digests  # noqa: F401
from bot.worker import duplicates as _duplicates  # noqa: F401
from bot.worker import events, feedback_jobs, home, lifecycle, notify  # noqa: F401
from bot.worker import finding as _finding  # noqa: F401
