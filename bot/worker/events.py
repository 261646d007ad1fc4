"""Routes inbox events to the features that care about them (several may)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.logging import bind
from bot.worker.core import JobContext, handler

log = logging.getLogger(__name__)

EventFn = Callable[[JobContext, dict[str, Any], dict[str, Any]], None]
_ROUTES: dict[tuple[str, str | None], list[EventFn]] = {}


def on_event(etype: str, subtype: str | None = None) -> Callable[[EventFn], EventFn]:
    """Register fn(ctx, event, envelope) for an event type (and message subtype; None = plain)."""

    def register(fn: EventFn) -> EventFn:
        _ROUTES.setdefault((etype, subtype), []).append(fn)
        return fn

    return register


@handler("event")
def dispatch(ctx: JobContext, payload: dict[str, Any]) -> None:
    event = payload["event"]
    etype = event.get("type", "")
    subtype = event.get("subtype") if etype == "message" else None
    with bind(event_id=payload.get("event_id"), channel=event.get("channel") or (event.get("item") or {}).get("channel"),
              user=event.get("user")):
        for fn in _ROUTES.get((etype, subtype), []):
            fn(ctx, event, payload)
