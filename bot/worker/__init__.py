"""The worker: the one place that sends to Slack after the ack, on a schedule or in bulk."""

from bot.worker.core import JobContext, PermanentError, TransientError, Worker, handler

__all__ = ["JobContext", "PermanentError", "TransientError", "Worker", "handler"]
