"""The wiring point: every feature Loopline runs, built with what it needs, and how features meet.

Nothing is switched on by importing a module: a feature runs because it is listed here. The runtime
(bot/runtime.py) takes the list and gives each part its place: listeners to the Bolt app, job
handlers and event routes to the worker, periodic tasks to the scheduler, background loops to their
threads, exporters to `loopline export`, Home sections to App Home.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.features import Background, Exporter, Feature, Listeners, Periodic
from bot.features.announcements.feature import feature as announcements_feature
from bot.features.decisions import service as decisions_service
from bot.features.decisions.feature import feature as decisions_feature
from bot.features.digests.feature import feature as digests_feature
from bot.features.feedback.feature import feature as feedback_feature
from bot.features.home.feature import feature as home_feature
from bot.features.subscriptions import service as subscriptions_service
from bot.features.subscriptions.feature import feature as subscriptions_feature
from bot.features.workspaces.feature import feature as workspaces_feature
from bot.queue.core import Jobs
from bot.queue.events import dispatcher

if TYPE_CHECKING:
    from bot.slack.commands import DirectCommand
    from bot.slack.edge import Edge

# The product's features, as a person using Loopline sees them ("workspaces" is the plumbing under them).
PRODUCT_FEATURES = ("feedback", "subscriptions", "announcements", "decisions", "digests", "home")


def build_features() -> list[Feature]:
    """Every feature, in the order their listeners are registered and their routes are called."""
    # A merge of feedback moved decision links: decisions refresh their cards and close the loop.
    feedback = feedback_feature(on_links_moved=decisions_service.links_moved)
    decisions = decisions_feature()
    digests = digests_feature()
    subscriptions = subscriptions_feature()
    announcements = announcements_feature(
        # The announcement modal names decisions; decisions say whether those ids exist.
        validate_decision_ids=decisions_service.validate_decision_ids,
        # An announcement reached all its channels: decisions tell the people behind the feedback it shipped.
        on_sent=[decisions_service.on_announcement_sent],
    )
    # A channel was archived or deleted: its subscriptions go inactive.
    workspaces = workspaces_feature(on_channel_gone=[subscriptions_service.deactivate_channel])
    # App Home shows each feature's section: the author's announcements, decision flags, the digest's themes.
    home = home_feature(sections=[*announcements.home_sections, *decisions.home_sections, *digests.home_sections])
    return [workspaces, feedback, decisions, digests, home, announcements, subscriptions]


def worker_jobs(features: Sequence[Feature]) -> Jobs:
    """Every job kind's handler, and the "event" kind that routes inbox events to the features."""
    jobs = Jobs()
    for f in features:
        jobs.merge(f.jobs)
    jobs.add("event", dispatcher(jobs.routes))
    return jobs


def listeners(features: Sequence[Feature]) -> list[Listeners]:
    return [f.listeners for f in features if f.listeners is not None]


def direct_commands(features: Sequence[Feature], edge: Edge) -> dict[str, DirectCommand]:
    out: dict[str, DirectCommand] = {}
    for f in features:
        for command, handler in (f.direct_commands(edge) if f.direct_commands else {}).items():
            if command in out:
                raise ValueError(f"two direct handlers for {command}")
            out[command] = handler
    return out


def periodic(features: Sequence[Feature]) -> list[Periodic]:
    return [p for f in features for p in f.periodic]


def background(features: Sequence[Feature]) -> list[Background]:
    return [b for f in features for b in f.background]


def exporters(features: Sequence[Feature]) -> dict[str, Exporter]:
    out: dict[str, Exporter] = {}
    for f in features:
        for kind, exporter in f.exporters.items():
            if kind in out:
                raise ValueError(f"two exporters for {kind!r}")
            out[kind] = exporter
    return out
