"""conversations.* (and users.conversations): joining and leaving, channel info, opening DMs and
group DMs, history and thread replies with Slack's cursors, members and channel lists."""

from __future__ import annotations

import time
import zlib
from bisect import bisect_left, bisect_right
from typing import Any

from .common import (
    TEAM_ID,
    Answer,
    Params,
    SlackError,
    decode_cursor,
    encode_cursor,
    flag,
    norm_ts,
    page,
    to_int,
    ts_us,
)
from .records import Identity
from .state import State


def channel_obj(
    s: State, ch: dict[str, Any], ident: Identity, *, num_members: bool = False
) -> dict[str, Any]:
    """A conversation as the Web API describes it to ``ident``."""
    if ch["is_im"]:
        return {
            "id": ch["id"],
            "created": ch["created"],
            "is_im": True,
            "is_org_shared": False,
            "user": ch["user"],
            "is_user_deleted": bool(s._users.get(ch["user"], {}).get("deleted")),
            "priority": 0,
        }
    out = {
        "id": ch["id"],
        "name": ch["name"],
        "name_normalized": ch["name"],
        "is_channel": not ch["is_private"] and not ch["is_mpim"],
        "is_group": ch["is_private"] and not ch["is_mpim"],
        "is_im": False,
        "is_mpim": ch["is_mpim"],
        "is_private": ch["is_private"],
        "is_archived": ch["is_archived"],
        "is_general": ch["name"] == "general",
        "is_shared": ch["is_ext_shared"] or ch.get("is_org_shared", False),
        "is_ext_shared": ch["is_ext_shared"],
        "is_org_shared": ch.get("is_org_shared", False),
        "is_pending_ext_shared": ch.get("is_pending_ext_shared", False),
        "is_member": ident.user_id in ch["members"],
        "context_team_id": ch.get("team_id", TEAM_ID),
        "created": ch["created"],
        "creator": ch["creator"],
        "unlinked": 0,
        "topic": {"value": "", "creator": "", "last_set": 0},
        "purpose": {"value": "", "creator": "", "last_set": 0},
    }
    if ch["is_ext_shared"] or ch.get("is_org_shared"):
        out["shared_team_ids"] = [ch.get("team_id", TEAM_ID), *ch.get("connected_teams", [])]
    if ch.get("is_pending_ext_shared"):
        out["pending_connected_team_ids"] = list(ch.get("connected_teams", []))
    if num_members:
        out["num_members"] = len(ch["members"])
    return out


def _visible(ch: dict[str, Any], ident: Identity) -> dict[str, Any]:
    """A private channel the bot is not in does not exist, as far as the bot can tell."""
    if ch["is_private"] and not ch["is_im"] and ident.user_id not in ch["members"]:
        raise SlackError("channel_not_found")
    return ch


def join(s: State, p: Params, ident: Identity) -> Answer:
    raw = p.get("channel")
    ch = s._channels.get(raw) if isinstance(raw, str) else None
    if ch is None:
        raise SlackError("channel_not_found")
    if ch["is_im"] or ch["is_mpim"] or ch["is_private"]:
        raise SlackError("method_not_supported_for_channel_type")
    if ch["is_archived"]:
        raise SlackError("is_archived")
    already = ident.user_id in ch["members"]
    ch["members"].add(ident.user_id)
    out: dict[str, Any] = {"channel": channel_obj(s, ch, ident)}
    if already:
        out["warning"] = "already_in_channel"
        out["response_metadata"] = {"warnings": ["already_in_channel"]}
    return out


def leave(s: State, p: Params, ident: Identity) -> Answer:
    ch = s._channel(p.get("channel"), ident)
    if ch["is_im"]:
        raise SlackError("method_not_supported_for_channel_type")
    if ident.user_id not in ch["members"]:
        return {"not_in_channel": True}
    ch["members"].discard(ident.user_id)
    return {}


def info(s: State, p: Params, ident: Identity) -> Answer:
    ch = _visible(s._channel(p.get("channel"), ident), ident)
    return {"channel": channel_obj(s, ch, ident, num_members=flag(p.get("include_num_members")))}


def open_(s: State, p: Params, ident: Identity) -> Answer:
    if p.get("channel"):
        ch = s._channel(p.get("channel"), ident)
        return {"no_op": True, "already_open": True, "channel": channel_obj(s, ch, ident)}
    users = [u.strip() for u in str(p.get("users") or "").split(",") if u.strip()]
    if not users:
        raise SlackError("users_list_not_supplied")
    unknown = [u for u in users if s.strict_users and u not in s._users]
    if unknown:
        raise SlackError("user_not_found")
    if len(users) == 1:
        existed = users[0] in s._dm_by_user
        ch = s._dm(users[0], ident)
    else:
        members = {*users, ident.user_id}
        cid = "G" + format(zlib.crc32(",".join(sorted(members)).encode()), "010d")
        existed = cid in s._channels
        if not existed:
            s._channels[cid] = {
                "id": cid,
                "name": "mpdm-" + "--".join(sorted(members)) + "-1",
                "is_private": True,
                "is_archived": False,
                "is_ext_shared": False,
                "is_im": False,
                "is_mpim": True,
                "members": members,
                "created": int(time.time()),
                "creator": ident.user_id,
                "team_id": ident.team_id,
            }
        ch = s._channels[cid]
    out: dict[str, Any] = {
        "channel": channel_obj(s, ch, ident) if flag(p.get("return_im")) else {"id": ch["id"]}
    }
    if existed:
        out.update(no_op=True, already_open=True)
    return out


def _bounds(p: Params) -> tuple[int, int, bool]:
    try:
        lo = ts_us(p["oldest"]) if p.get("oldest") not in (None, "") else 0
        hi = ts_us(p["latest"]) if p.get("latest") not in (None, "") else 1 << 62
    except ValueError as exc:
        raise SlackError("invalid_ts_latest" if "latest" in str(exc) else "invalid_ts_oldest") from exc
    return lo, hi, flag(p.get("inclusive"))


def history(s: State, p: Params, ident: Identity) -> Answer:
    ch = s._readable(p.get("channel"), ident)
    hist = s._hist(ch["id"])
    lo, hi, inclusive = _bounds(p)
    limit = max(1, min(to_int(p.get("limit"), 100), 999))
    start = bisect_left(hist.top_keys, lo) if inclusive else bisect_right(hist.top_keys, lo)
    end = bisect_right(hist.top_keys, hi) if inclusive else bisect_left(hist.top_keys, hi)
    before = decode_cursor(p.get("cursor"), "next_ts")
    if before is not None:
        end = min(end, bisect_left(hist.top_keys, before))
    page_start = max(start, end - limit)
    chunk = hist.top[page_start:end][::-1]
    metadata = flag(p.get("include_all_metadata"))
    has_more = page_start > start
    out: dict[str, Any] = {
        "messages": [s._render(ch["id"], m, metadata=metadata) for m in chunk],
        "has_more": has_more,
        "pin_count": 0,
        "channel_actions_ts": None,
        "channel_actions_count": 0,
    }
    if p.get("latest"):
        out["latest"] = p["latest"]
    if has_more:
        out["response_metadata"] = {"next_cursor": encode_cursor("next_ts", hist.top_keys[page_start])}
    return out


def replies(s: State, p: Params, ident: Identity) -> Answer:
    ch = s._readable(p.get("channel"), ident)
    hist = s._hist(ch["id"])
    ts = norm_ts(p.get("ts"))
    if not ts:
        raise SlackError("thread_not_found")
    parent = hist.by_ts.get(ts)
    if parent is not None and parent.get("thread_ts") not in (None, parent["ts"]):
        ts = parent["thread_ts"]
        parent = hist.by_ts.get(ts)
    thread = hist.threads.get(ts, [])
    if parent is None and not thread:
        raise SlackError("thread_not_found")
    if parent is None:
        parent = {
            "type": "message",
            "subtype": "tombstone",
            "text": "This message was deleted.",
            "ts": ts,
            "user": "USLACKBOT",
            "hidden": True,
        }
    lo, hi, inclusive = _bounds(p)
    limit = max(1, min(to_int(p.get("limit"), 1000), 1000))
    after = decode_cursor(p.get("cursor"), "next_ts")
    selected: list[dict[str, Any]] = [] if after is not None else [parent]
    for reply in thread:
        key = ts_us(reply["ts"])
        if after is not None and key < after:
            continue
        if (key > lo or (inclusive and key == lo)) and (key < hi or (inclusive and key == hi)):
            selected.append(reply)
    chunk, rest = selected[:limit], selected[limit:]
    metadata = flag(p.get("include_all_metadata"))
    out: dict[str, Any] = {
        "messages": [s._render(ch["id"], m, metadata=metadata) for m in chunk],
        "has_more": bool(rest),
    }
    if rest:
        out["response_metadata"] = {"next_cursor": encode_cursor("next_ts", ts_us(rest[0]["ts"]))}
    return out


def members(s: State, p: Params, ident: Identity) -> Answer:
    ch = _visible(s._channel(p.get("channel"), ident), ident)
    chunk, meta = page(sorted(ch["members"]), p, 100)
    return {"members": chunk, "response_metadata": meta}


def _list_channels(s: State, p: Params, ident: Identity, member: str | None) -> Answer:
    types = {t.strip() for t in str(p.get("types") or "public_channel").split(",")}
    exclude_archived = flag(p.get("exclude_archived"))
    out = []
    for ch in s._channels.values():
        if ch["is_im"]:
            kind = "im"
        elif ch["is_mpim"]:
            kind = "mpim"
        else:
            kind = "private_channel" if ch["is_private"] else "public_channel"
        if kind not in types or (exclude_archived and ch["is_archived"]):
            continue
        if member is not None and member not in ch["members"]:
            continue
        if kind != "public_channel" and ident.user_id not in ch["members"]:
            continue
        out.append(channel_obj(s, ch, ident))
    chunk, meta = page(out, p, 100)
    return {"channels": chunk, "response_metadata": meta}


def list_(s: State, p: Params, ident: Identity) -> Answer:
    return _list_channels(s, p, ident, None)


def users_conversations(s: State, p: Params, ident: Identity) -> Answer:
    return _list_channels(s, p, ident, p.get("user") or ident.user_id)
