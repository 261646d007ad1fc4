"""Announcements: /announce, the fan-out to subscribed channels, acknowledgements."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.features import AnnouncementSent, DecisionIdsValidator, Exporter, Feature, Periodic, Running
from bot.features.announcements import delivery, jobs, listeners, service

if TYPE_CHECKING:
    from bot.runtime import Runtime


def feature(*, validate_decision_ids: DecisionIdsValidator, on_sent: Sequence[AnnouncementSent]) -> Feature:
    on_sent = tuple(on_sent)

    def start_delivery(rt: Runtime) -> Running:
        return delivery.start(rt, on_sent=on_sent)

    return Feature(
        name="announcements",
        listeners=functools.partial(listeners.register, validate_decision_ids=validate_decision_ids),
        periodic=(Periodic("prune-view-grants", 3600, jobs.prune_view_grants),),
        background=(start_delivery,),
        exporters={"announcements": Exporter(service.EXPORT_FIELDS,
                                             lambda s, all_: service.export_announcements(s, all_))},
        home_sections=(jobs.home_section,),
    )
