"""chat.*: posting, editing and deleting messages, ephemeral messages, permalinks, scheduled
messages. Each handler takes the fake's State (lock held), the parsed params and the caller's
Identity, and returns the answer without "ok" (api.py adds it) or raises SlackError."""

from __future__ import annotations

import time
from typing import Any

from . import blockkit
from .common import APP_ID, Answer, Params, SlackError, flag, norm_ts, to_int, ts_us
from .records import Identity
from .state import State


def check_message_payload(s: State, p: Params, *, require_content: bool = True) -> None:
    blocks, attachments = p.get("blocks"), p.get("attachments")
    if require_content and not (p.get("text") or blocks or attachments or p.get("markdown_text")):
        raise SlackError("no_text")
    if p.get("markdown_text") and (p.get("text") or blocks):
        raise SlackError("markdown_text_conflict")
    if blocks is not None and not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format")
    if attachments is not None:
        if not isinstance(attachments, list):
            raise SlackError("invalid_attachments")
        if len(attachments) > blockkit.MAX_ATTACHMENTS:
            raise SlackError("too_many_attachments")
    metadata = p.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise SlackError("invalid_metadata_format")
    if blocks and s.validate_blocks:
        errors = blockkit.check_message_blocks(blocks)
        if errors:
            raise SlackError("invalid_blocks", response_metadata={"messages": errors})


def bot_message(p: Params, ident: Identity, ts: str) -> dict[str, Any]:
    """A message as the calling bot posts it (also the message a file upload shares)."""
    text = p.get("text") or p.get("markdown_text") or ""
    msg: dict[str, Any] = {
        "type": "message",
        "ts": ts,
        "user": ident.user_id,
        "text": str(text)[: blockkit.MAX_TEXT],
        "team": ident.team_id,
    }
    if ident.bot_id:
        msg["bot_id"] = ident.bot_id
        msg["app_id"] = APP_ID
        msg["bot_profile"] = {
            "id": ident.bot_id,
            "app_id": APP_ID,
            "name": "Loopline",
            "team_id": ident.team_id,
            "deleted": False,
        }
    for key in ("blocks", "attachments", "metadata"):
        if p.get(key) is not None:
            msg[key] = p[key]
    return msg


def _own(msg: dict[str, Any], ident: Identity, error: str) -> None:
    """Only the bot that posted a message may change it."""
    if msg.get("user") != ident.user_id and (not msg.get("bot_id") or msg.get("bot_id") != ident.bot_id):
        raise SlackError(error)


def post_message(s: State, p: Params, ident: Identity) -> Answer:
    ch = s._postable(p.get("channel"), ident)
    check_message_payload(s, p)
    thread_ts = p.get("thread_ts")
    if thread_ts not in (None, ""):
        try:
            ts_us(thread_ts)
        except ValueError as exc:
            raise SlackError("invalid_thread_ts") from exc
    msg = bot_message(p, ident, s._new_ts())
    s._attach_thread(ch["id"], msg, norm_ts(thread_ts))
    if msg.get("thread_ts") and flag(p.get("reply_broadcast")):
        msg["subtype"] = "thread_broadcast"
    s._store(ch["id"], msg)
    return {"channel": ch["id"], "ts": msg["ts"], "message": s._render(ch["id"], msg, metadata=True)}


def update(s: State, p: Params, ident: Identity) -> Answer:
    ch = s._channel(p.get("channel"), ident)
    msg = s._message(ch, p.get("ts"))
    _own(msg, ident, "cant_update_message")
    if ch["is_archived"]:
        raise SlackError("is_inactive")
    has_content = any(p.get(k) is not None for k in ("text", "blocks", "attachments", "markdown_text"))
    if not has_content:
        raise SlackError("no_text")
    check_message_payload(s, p, require_content=False)
    if p.get("text") is not None or p.get("markdown_text") is not None:
        msg["text"] = str(p.get("text") or p.get("markdown_text") or "")[: blockkit.MAX_TEXT]
    for key in ("blocks", "attachments", "metadata"):
        if p.get(key) is not None:
            msg[key] = p[key]
    msg["edited"] = {"user": ident.user_id, "ts": s._new_ts()}
    return {
        "channel": ch["id"],
        "ts": msg["ts"],
        "text": msg["text"],
        "message": s._render(ch["id"], msg, metadata=True),
    }


def delete(s: State, p: Params, ident: Identity) -> Answer:
    ch = s._channel(p.get("channel"), ident)
    msg = s._message(ch, p.get("ts"))
    _own(msg, ident, "cant_delete_message")
    s._hist(ch["id"]).remove(msg["ts"])
    s._deleted.append(dict(msg))
    return {"channel": ch["id"], "ts": msg["ts"]}


def post_ephemeral(s: State, p: Params, ident: Identity) -> Answer:
    ch = s._postable(p.get("channel"), ident)
    user = p.get("user")
    if not user:
        raise SlackError("user_not_in_channel")
    humans = {m for m in ch["members"] if not s._users.get(m, {}).get("is_bot")}
    humans.discard(ident.user_id)
    # channels seeded with people check membership; an unpopulated channel accepts anyone
    if not ch["is_im"] and humans and user not in ch["members"]:
        raise SlackError("user_not_in_channel")
    if ch["is_im"] and user != ch["user"]:
        raise SlackError("user_not_in_channel")
    check_message_payload(s, p)
    ts = s._new_ts()
    s._ephemerals.append(
        {
            "channel": ch["id"],
            "user": user,
            "text": p.get("text") or "",
            "blocks": p.get("blocks"),
            "attachments": p.get("attachments"),
            "thread_ts": norm_ts(p.get("thread_ts")),
            "ts": ts,
        }
    )
    return {"message_ts": ts}


def get_permalink(s: State, p: Params, ident: Identity) -> Answer:
    ch = s._channel(p.get("channel"), ident)
    msg = s._message(ch, p.get("message_ts"))
    return {"channel": ch["id"], "permalink": s._permalink(ch["id"], msg["ts"], msg.get("thread_ts"))}


def schedule_message(s: State, p: Params, ident: Identity) -> Answer:
    ch = s._postable(p.get("channel"), ident)
    post_at = to_int(p.get("post_at"), -1)
    now = int(time.time())
    if post_at < 0:
        raise SlackError("invalid_time")
    if post_at < now:
        raise SlackError("time_in_past")
    if post_at > now + 120 * 86400:
        raise SlackError("time_too_far")
    check_message_payload(s, p)
    sid = s._new_id("Q")
    msg = bot_message(p, ident, s._new_ts())
    if p.get("thread_ts"):
        msg["thread_ts"] = norm_ts(p.get("thread_ts"))
    s._scheduled.append(
        {
            "id": sid,
            "channel": ch["id"],
            "post_at": post_at,
            "date_created": now,
            "text": msg["text"],
            "message": msg,
        }
    )
    message = {k: v for k, v in msg.items() if k != "ts"}
    return {"channel": ch["id"], "scheduled_message_id": sid, "post_at": str(post_at), "message": message}


def delete_scheduled_message(s: State, p: Params, ident: Identity) -> Answer:
    ch = s._channel(p.get("channel"), ident)
    for i, item in enumerate(s._scheduled):
        if item["id"] == p.get("scheduled_message_id") and item["channel"] == ch["id"]:
            del s._scheduled[i]
            return {}
    raise SlackError("invalid_scheduled_message_id")


def scheduled_messages_list(s: State, p: Params, ident: Identity) -> Answer:
    items = [
        {
            "id": item["id"],
            "channel_id": item["channel"],
            "post_at": item["post_at"],
            "date_created": item["date_created"],
            "text": item["text"],
        }
        for item in s._scheduled
        if not p.get("channel") or item["channel"] == p.get("channel")
    ]
    return {"scheduled_messages": items, "response_metadata": {"next_cursor": ""}}
