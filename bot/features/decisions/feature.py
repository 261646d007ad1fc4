"""Decisions: /decision, the decision card, and closing the loop with the people behind the feedback."""

from __future__ import annotations

from bot.features import Exporter, Feature
from bot.features.decisions import jobs, listeners, service


def feature() -> Feature:
    return Feature(
        name="decisions",
        listeners=listeners.register,
        jobs=jobs.jobs,
        exporters={"decisions": Exporter(service.EXPORT_FIELDS, lambda s, _all: service.export_decisions(s))},
        home_sections=(jobs.home_flags,),
    )
