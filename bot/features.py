"""Importing this registers every feature's periodic jobs and worker passes."""

import bot.services.decisions
import bot.worker.delivery
import bot.worker.handlers  # noqa: F401
