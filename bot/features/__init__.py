"""The product's features, one package each. A feature hands the composition root (bot/composition.py)
one `Feature`: its listeners, job handlers and event routes, periodic tasks, background loops,
exporters and Home sections. Nothing here is switched on by importing a module: only what
bot/composition.py lists runs.

The contracts between features are plain typed callables, passed in by bot/composition.py:
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.queue.core import Jobs

if TYPE_CHECKING:  # types only: features must not import the runtime or Bolt to be built
    from slack_bolt.async_app import AsyncApp
    from sqlalchemy.orm import Session

    from bot.runtime import Runtime
    from bot.slack.edge import Edge

# Contracts between features (each wired in bot/composition.py).
# Decisions validate the decision ids typed into the announcement modal: fn(session, team_id, ids) ->
# problems (empty when every id exists).
DecisionIdsValidator = Callable[["Session", str, list[int]], list[str]]
# An announcement reached all its channels ("sent"), in the worker's transaction: fn(session,
# announcement). Decisions tell the people behind the feedback that it shipped.
AnnouncementSent = Callable[["Session", Any], None]
# A channel was archived or deleted: fn(session, team_id, channel, reason). Subscriptions go inactive.
ChannelGone = Callable[["Session", str, str, str], object]
# A feature's part of App Home: fn(session, home data, team_id, user_id) enriches the data.
HomeSection = Callable[["Session", Any, str, str], None]
# Registers a feature's Bolt listeners on the app, through the edge.
Listeners = Callable[["AsyncApp", "Edge"], None]


@dataclass(frozen=True)
class Periodic:
    """A task APScheduler runs every `seconds` under a stable id (replace_existing): the truth is in our
    tables, so a missed run is caught up by the next one."""

    job_id: str
    seconds: float
    run: Callable[[Runtime], None]


@dataclass(frozen=True)
class Running:
    """A background loop that was started: how to stop it, and how to nudge it after each worker pass."""

    stop: Callable[[], None]
    wake: Callable[[], None] | None = None


# A long-running loop in its own thread (delivery fan-out, digest posting), so a 200-second fan-out never
# holds up the inbox.
Background = Callable[["Runtime"], Running]


@dataclass(frozen=True)
class Exporter:
    """`loopline export KIND`: the CSV columns and records(session, include_withdrawn)."""

    fields: list[str]
    records: Callable[[Session, bool], Iterator[dict[str, Any]]]


@dataclass(frozen=True)
class Feature:
    name: str
    listeners: Listeners | None = None
    jobs: Jobs = field(default_factory=Jobs)  # job handlers {kind: fn} and event routes
    periodic: tuple[Periodic, ...] = ()
    background: tuple[Background, ...] = ()
    exporters: dict[str, Exporter] = field(default_factory=dict)
    home_sections: tuple[HomeSection, ...] = ()
