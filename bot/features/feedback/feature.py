"""Feedback: /feedback, the shortcut and the reaction capture, votes, watched channels; duplicates
suggested at capture, merge and undo; search and the account view."""

from __future__ import annotations

from typing import Any

from bot.features import Exporter, Feature
from bot.features.feedback import (
    duplicates,
    find_listeners,
    finding,
    jobs,
    listeners,
    merge_listeners,
    merging,
    service,
)
from bot.queue.core import Jobs


def feature(*, on_links_moved: merging.LinksMoved) -> Feature:
    """`on_links_moved`: a merge or its undo moved decision links (decisions refresh cards, close loops)."""
    handlers = Jobs()
    for part in (jobs.jobs, duplicates.jobs, finding.jobs):
        handlers.merge(part)

    def register(app: Any, edge: Any) -> None:
        listeners.register(app, edge)
        merge_listeners.register(app, edge, on_links_moved=on_links_moved)
        find_listeners.register(app, edge)

    return Feature(
        name="feedback",
        listeners=register,
        # `/feedback TEXT`, the command typed all day, skips Bolt's dispatch where it can (bot/slack/commands.py).
        direct_commands=lambda edge: {"/feedback": listeners.FeedbackListeners(edge).direct_feedback_command},
        jobs=handlers,
        exporters={"feedback": Exporter(service.EXPORT_FIELDS,
                                        lambda s, all_: service.export_feedback(s, include_withdrawn=all_))},
    )
