"""The product's features, one package each. A feature hands the composition root (bot/composition.py)
one `Feature`: its listeners, job handlers and event routes, periodic tasks, background loops,
exporters and Home sections. Nothing here is switched on by importing a module: only what
bot/composition.py lists runs.

The contracts between features are plain typed callables and data, passed in by bot/composition.py
(bot/features/contracts.py, importable by services: it imports nothing from the queue or Slack).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.core.exports import Exporter as Exporter
from bot.features.contracts import (
    AnnouncementSent as AnnouncementSent,
)
from bot.features.contracts import (
    ChannelGone as ChannelGone,
)
from bot.features.contracts import (
    DecisionIdsValidator as DecisionIdsValidator,
)
from bot.features.contracts import (
    HomeData as HomeData,
)
from bot.features.contracts import (
    HomeSection as HomeSection,
)
from bot.queue.core import Jobs

if TYPE_CHECKING:  # types only: features must not import the runtime or Bolt to be built
    from slack_bolt.async_app import AsyncApp

    from bot.runtime import Runtime
    from bot.slack.commands import DirectCommand
    from bot.slack.edge import Edge

# Registers a feature's Bolt listeners on the app, through the edge.
Listeners = Callable[["AsyncApp", "Edge"], None]
# A feature's slash commands answered without Bolt's dispatch {"/command": handler}, built with the edge
# (bot/slack/commands.py).
DirectCommands = Callable[["Edge"], dict[str, "DirectCommand"]]


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
class Feature:
    name: str
    listeners: Listeners | None = None
    direct_commands: DirectCommands | None = None
    jobs: Jobs = field(default_factory=Jobs)  # job handlers {kind: fn} and event routes
    periodic: tuple[Periodic, ...] = ()
    background: tuple[Background, ...] = ()
    exporters: dict[str, Exporter] = field(default_factory=dict)
    home_sections: tuple[HomeSection, ...] = ()
