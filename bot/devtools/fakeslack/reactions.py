"""reactions.*: reading a message with its reactions (and permalink), adding and removing the bot's own."""

from __future__ import annotations

from typing import Any

from .common import Answer, Params, SlackError, ts_us
from .records import Identity
from .state import State


def _target(s: State, p: Params, ident: Identity) -> tuple[dict[str, Any], dict[str, Any]]:
    if not p.get("channel") and not p.get("file"):
        raise SlackError("no_item_specified")
    ch = s._channel(p.get("channel"), ident)
    ts = p.get("timestamp")
    if not ts:
        raise SlackError("no_item_specified")
    try:
        ts_us(ts)
    except ValueError as exc:
        raise SlackError("bad_timestamp") from exc
    return ch, s._message(ch, ts)


def get(s: State, p: Params, ident: Identity) -> Answer:
    ch, msg = _target(s, p, ident)
    message = s._render(ch["id"], msg)
    message["permalink"] = s._permalink(ch["id"], msg["ts"], msg.get("thread_ts"))
    return {"type": "message", "channel": ch["id"], "message": message}


def add(s: State, p: Params, ident: Identity) -> Answer:
    name = str(p.get("name") or "").strip(":")
    if not name:
        raise SlackError("invalid_name")
    _ch, msg = _target(s, p, ident)
    users = msg["reactions"].setdefault(name, [])
    if ident.user_id in users:
        raise SlackError("already_reacted")
    if len(msg["reactions"]) > 23 and not users:
        raise SlackError("too_many_emoji")
    users.append(ident.user_id)
    return {}


def remove(s: State, p: Params, ident: Identity) -> Answer:
    name = str(p.get("name") or "").strip(":")
    _ch, msg = _target(s, p, ident)
    users = msg["reactions"].get(name) or []
    if ident.user_id not in users:
        raise SlackError("no_reaction")
    users.remove(ident.user_id)
    if not users:
        del msg["reactions"][name]
    return {}
