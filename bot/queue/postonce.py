"""Post a message at most once, even when we can't know whether an earlier attempt landed.

Between Slack accepting chat.postMessage and us recording its ts there is always a window: the
process dies, the answer is a 5xx or the connection drops after Slack stored the message. A plain
retry then posts a second copy. So every such post carries message metadata naming what it is
(``event_type`` = key_type, ``event_payload.key`` = key); the caller marks "attempt started" in its own
row before the first post, and only when that mark is set does a later attempt look in the channel
(or thread) for a message carrying the key and adopt its ts instead of posting again.

The post itself goes through a client without the 5xx/connection-error retry handlers (they re-send
blindly); 429 is still retried because a rate-limited call was certainly not processed. Any other
failure is raised for the caller's retry, which comes back here with ``check=True``.
The same technique as announcement delivery (bot/features/announcements/delivery.py), which keeps its own copy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.core import clock
from bot.metrics import sibling_handlers
from bot.queue.core import PermanentError, classify

log = logging.getLogger(__name__)

# Our clock and Slack's disagree a little; an earlier attempt's message is never older than its mark.
MARGIN = timedelta(seconds=60)
MAX_PAGES = 20


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str
    adopted: bool  # True: found in Slack, posted by an earlier attempt


def mark_attempt(db: Any, model: Any, row_id: int) -> datetime | None:
    """Mark "a post is being attempted" on the row (its `post_started_at`) before the first
    chat.postMessage; returns the earlier mark, if any.

    Read and written in one write transaction, so of two runs of the same job (a lease that expired)
    the second sees the first's mark and looks in Slack before posting."""
    with db.session() as s:
        row = s.get(model, row_id, with_for_update=True)
        if row is None:
            return None
        earlier: datetime | None = row.post_started_at
        if earlier is None:
            row.post_started_at = clock.now()
        return earlier


def metadata(key_type: str, key: str) -> dict[str, Any]:
    return {"event_type": key_type, "event_payload": {"key": key}}


def no_resend(client: Any) -> Any:
    """A sibling of `client` that never re-sends a call Slack may have processed (5xx, dropped connection)."""
    if not isinstance(client, WebClient):
        return client
    return WebClient(token=client.token, base_url=client.base_url, timeout=client.timeout, ssl=client.ssl,
                     proxy=client.proxy, headers=client.headers,
                     # counted in /metrics like the original's (bot/metrics.py)
                     retry_handlers=sibling_handlers(client.retry_handlers, [RateLimitErrorRetryHandler(max_retry_count=3)]))


def resolve_channel(client: Any, channel: str) -> str:
    """A user id names their DM with the bot for chat.postMessage; reading history needs the D… id."""
    if channel[:1] in ("U", "W"):
        resp = client.conversations_open(users=channel)
        return str((resp.get("channel") or {})["id"])
    return channel


def _messages(client: Any, channel: str, oldest: datetime, thread_ts: str | None) -> Iterator[dict[str, Any]]:
    if oldest.tzinfo is None:  # SQLite hands back naive UTC datetimes
        oldest = oldest.replace(tzinfo=UTC)
    since = f"{(oldest - MARGIN).timestamp():.6f}"
    cursor = None
    for _ in range(MAX_PAGES):
        if thread_ts:
            resp = client.conversations_replies(channel=channel, ts=thread_ts, oldest=since,
                                                include_all_metadata=True, limit=200, cursor=cursor)
        else:
            resp = client.conversations_history(channel=channel, oldest=since, include_all_metadata=True,
                                                limit=200, cursor=cursor)
        for msg in resp.get("messages") or []:
            if not thread_ts or msg.get("ts") != thread_ts:  # replies lists the parent first
                yield msg
        cursor = (resp.get("response_metadata") or {}).get("next_cursor")
        if not resp.get("has_more") or not cursor:
            return


def find_all(client: Any, *, channel: str, key_type: str, oldest: datetime,
             thread_ts: str | None = None) -> tuple[str, dict[str, str]]:
    """(channel id, {key: ts}) of every message carrying `key_type` since `oldest` (in the thread, if given).

    A channel we can't read (permanent error, e.g. a missing scope) is reported as holding nothing:
    posting is then the only way not to lose the message, exactly like before this check existed."""
    found: dict[str, str] = {}
    try:
        channel = resolve_channel(client, channel)
        for msg in _messages(client, channel, oldest, thread_ts):
            meta = msg.get("metadata") or {}
            if meta.get("event_type") == key_type:
                found.setdefault(str((meta.get("event_payload") or {}).get("key")), str(msg["ts"]))
    except Exception as raw:
        if isinstance(classify(raw), PermanentError):
            log.warning("can't look for earlier %s messages in %s: %s", key_type, channel, raw)
            return channel, {}
        raise
    return channel, found


def find(client: Any, *, channel: str, key_type: str, key: str, oldest: datetime,
         thread_ts: str | None = None) -> tuple[str, str] | None:
    """(channel id, ts) of a message carrying this key, posted since `oldest`, else None."""
    channel, found = find_all(client, channel=channel, key_type=key_type, oldest=oldest, thread_ts=thread_ts)
    return (channel, found[key]) if key in found else None


def post_once(client: Any, *, channel: str, key_type: str, key: str, started: datetime | None,
              thread_ts: str | None = None, **post_kwargs: Any) -> Posted:
    """chat.postMessage unless an earlier attempt (marked by `started`) already posted this key.

    `started` is the caller's recorded "attempt started" time from BEFORE this attempt: None means no
    earlier attempt can have posted, so no lookup is made. Record your own mark before calling."""
    if started is not None:
        found = find(client, channel=channel, key_type=key_type, key=key, oldest=started, thread_ts=thread_ts)
        if found:
            log.info("adopted an earlier %s %s in %s (ts %s)", key_type, key, *found)
            return Posted(found[0], found[1], adopted=True)
    if thread_ts:
        post_kwargs["thread_ts"] = thread_ts
    resp = no_resend(client).chat_postMessage(channel=channel, metadata=metadata(key_type, key), **post_kwargs)
    return Posted(str(resp["channel"]), str(resp["ts"]), adopted=False)
