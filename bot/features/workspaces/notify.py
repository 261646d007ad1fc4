"""Private messages: ephemerals, DMs and response_url answers, sent after the ack."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.queue.core import JobContext, Jobs, slack_error
from bot.queue.postonce import post_once

log = logging.getLogger(__name__)
jobs = Jobs()  # this module's job handlers and event routes, collected by bot/composition.py

_NO_EPHEMERAL = {"user_not_in_channel", "channel_not_found", "not_in_channel", "is_archived"}


@jobs.handler("notify.ephemeral")
def send_ephemeral(ctx: JobContext, p: dict[str, Any]) -> None:
    try:
        ctx.client().chat_postEphemeral(channel=p["channel"], user=p["user"], text=p["text"], blocks=p.get("blocks"),
                                        thread_ts=p.get("thread_ts"))
    except SlackApiError as e:
        # Someone who can't see the channel any more (or a channel we were removed from) still
        # deserves the answer: fall back to a DM rather than dropping it.
        if slack_error(e) in _NO_EPHEMERAL and p.get("fallback_dm", True):
            send_dm(ctx, p)
            return
        raise


@jobs.handler("notify.dm")
def send_dm(ctx: JobContext, p: dict[str, Any]) -> None:

    # A retried job may follow a DM that landed: the job's attempt counter is the "attempt started" mark.
    post_once(ctx.client(), channel=p["user"], key_type="loopline_notice", key=ctx.key,
              started=ctx.created_at if ctx.attempts > 1 else None, text=p["text"], blocks=p.get("blocks"),
              unfurl_links=False)


@jobs.handler("notify.respond")
def send_response(ctx: JobContext, p: dict[str, Any]) -> None:
    url = p.get("response_url")
    if not url:
        send_dm(ctx, p)
        return
    resp = WebhookClient(url, timeout=15).send(text=p["text"], blocks=p.get("blocks"), response_type="ephemeral",
                                               replace_original=p.get("replace_original", False))
    if resp.status_code >= 500:
        raise OSError(f"response_url answered {resp.status_code}")
    if resp.status_code >= 400:  # expired (30 min / 5 uses): say it by DM instead
        send_dm(ctx, p)
