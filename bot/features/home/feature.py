"""App Home: the person's own view, with each feature's section."""

from __future__ import annotations

from collections.abc import Sequence

from bot.features import Feature, HomeSection
from bot.features.home import jobs, listeners


def feature(*, sections: Sequence[HomeSection]) -> Feature:
    return Feature(name="home", listeners=listeners.register, jobs=jobs.jobs(sections))
