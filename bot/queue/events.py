"""Routes inbox events to the features that care about them (several may)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from bot.core.logging import bind
from bot.queue.core import EventFn, Handler, JobContext

log = logging.getLogger(__name__)


def dispatcher(routes: Iterable[tuple[str, str | None, EventFn]]) -> Handler:
    """The handler of the "event" job kind: calls fn(ctx, event, envelope) for each route of the event's
    type (and message subtype; None = a plain message), in the order the routes were given."""
    table: dict[tuple[str, str | None], list[EventFn]] = {}
    for etype, subtype, fn in routes:
        table.setdefault((etype, subtype), []).append(fn)

    def dispatch(ctx: JobContext, payload: dict[str, Any]) -> None:
        event = payload["event"]
        etype = event.get("type", "")
        subtype = event.get("subtype") if etype == "message" else None
        with bind(event_id=payload.get("event_id"),
                  channel=event.get("channel") or (event.get("item") or {}).get("channel"), user=event.get("user")):
            for fn in table.get((etype, subtype), []):
                fn(ctx, event, payload)

    return dispatch
