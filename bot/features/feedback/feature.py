"""Feedback: /feedback, the shortcut and the reaction capture, votes, watched channels."""

from __future__ import annotations

from bot.features import Exporter, Feature
from bot.features.feedback import jobs, listeners, service


def feature() -> Feature:
    return Feature(
        name="feedback",
        listeners=listeners.register,
        jobs=jobs.jobs,
        exporters={"feedback": Exporter(service.EXPORT_FIELDS,
                                        lambda s, all_: service.export_feedback(s, include_withdrawn=all_))},
    )
