"""Digests: /digest, schedules, the themes of a period posted with a chart, themes on App Home."""

from __future__ import annotations

from bot.features import Feature, Periodic
from bot.features.digests import jobs, listeners


def feature() -> Feature:
    return Feature(
        name="digests",
        listeners=listeners.register,
        jobs=jobs.jobs,
        periodic=(Periodic("digest-plan", 30, jobs.plan), Periodic("digest-embed", 60, jobs.embed_pass)),
        background=(jobs.start_poster,),
        home_sections=(jobs.home_themes,),
    )
