"""Subscriptions: /subscribe, which channels hear about which product areas."""

from __future__ import annotations

from bot.features import Feature
from bot.features.subscriptions import jobs, listeners


def feature() -> Feature:
    return Feature(name="subscriptions", listeners=listeners.register, jobs=jobs.jobs)
