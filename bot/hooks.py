"""Extension points between features, so that no feature imports another's internals.

Each list is filled on import by the feature that provides the behaviour (see bot/features.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

# Called in the worker's transaction when an announcement has reached all its channels (status
# "sent"): fn(session, announcement). Decisions use it to tell people their feedback shipped.
announcement_sent: list[Callable[[Session, Any], None]] = []

# Validates decision ids typed into the announcement modal: fn(session, team_id, ids) -> list of
# problems (empty when all exist). Provided by decisions.
decision_ids_validators: list[Callable[[Session, str, list[int]], list[str]]] = []

# A channel was archived or deleted: fn(session, team_id, channel, reason). Subscriptions go inactive.
channel_gone: list[Callable[[Session, str, str, str], None]] = []
