"""Contracts between features: typed callables and the data they pass, each wired in bot/composition.py.

Plain types only (no queue, no Slack), so a service may name them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Contracts between features (each wired in bot/composition.py).
# Decisions validate the decision ids typed into the announcement modal: fn(session, team_id, ids) ->
# problems (empty when every id exists).
DecisionIdsValidator = Callable[["Session", str, list[int]], list[str]]
# An announcement reached all its channels ("sent"), in the worker's transaction: fn(session,
# announcement). Decisions tell the people behind the feedback that it shipped.
AnnouncementSent = Callable[["Session", Any], None]
# A channel was archived or deleted: fn(session, team_id, channel, reason). Subscriptions go inactive.
ChannelGone = Callable[["Session", str, str, str], object]


@dataclass
class HomeData:
    """What App Home shows (bot/features/home/service.py fills it; each feature's HomeSection adds its part)."""

    week_total: int = 0
    previous_total: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    top_areas: list[tuple[str, int]] = field(default_factory=list)
    themes: list[tuple[str, int]] = field(default_factory=list)
    open_decisions: list[dict[str, Any]] = field(default_factory=list)
    mine: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: dict[str, list[str]] = field(default_factory=dict)
    # Totals beyond the listed rows, so the view can say "and 14 more" instead of silently clipping.
    open_total: int = 0
    mine_total: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. decision_flags {id: ["overdue", ...]}
    # Blocks other features add below the person's own feedback (their announcements), drawn by that
    # feature's own renderer: App Home shows them without knowing the feature.
    sections: list[dict[str, Any]] = field(default_factory=list)


# A feature's part of App Home: fn(session, home data, team_id, user_id) enriches the data.
HomeSection = Callable[["Session", HomeData, str, str], None]
