"""Importing this registers every feature's periodic jobs and worker passes."""

import bot.worker.handlers  # noqa: F401
