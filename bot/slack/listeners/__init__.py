"""Each listener module registers itself; this is the list."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.edge import Edge


def register_all(app: AsyncApp, edge: Edge) -> None:
    from bot.slack.listeners import (
        announcements,
        decisions,
        digests,
        events,
        feedback,
        finding,
        home,
        merging,
        subscriptions,
    )

    for module in (events, feedback, merging, finding, decisions, digests, home, announcements, subscriptions):
        module.register(app, edge)
