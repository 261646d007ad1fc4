"""Workspaces: uninstalls and revoked tokens, channels archived or gone, Slack Connect (who is outside),
and the generic notices (ephemeral, DM, response_url) every feature queues."""

from __future__ import annotations

from collections.abc import Sequence

from bot.features import ChannelGone, Feature
from bot.features.workspaces import audience, notify
from bot.features.workspaces import jobs as lifecycle
from bot.queue.core import Jobs


def feature(*, on_channel_gone: Sequence[ChannelGone]) -> Feature:
    jobs = Jobs()
    for part in (lifecycle.jobs, lifecycle.channel_gone_routes(on_channel_gone), audience.jobs, notify.jobs):
        jobs.merge(part)
    return Feature(name="workspaces", jobs=jobs)
