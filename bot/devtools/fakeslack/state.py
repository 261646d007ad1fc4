"""Everything the fake remembers: tokens and the workspaces they stand for, people, channels,
messages with their threads, views, files, and the log of calls; plus the knobs tests turn.

One re-entrant lock guards all of it. The HTTP side (api.py) holds it while a Web API handler runs,
so handlers (plain functions in chat.py, conversations.py, ...) read and change these fields freely;
the test-facing methods (seeding.py, queries.py, faults.py) take it themselves. Lookups a handler
shares with others live here and raise SlackError the way Slack answers.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .common import (
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    SlackError,
    default_oauth_response,
    fmt_ts,
    norm_ts,
    ts_us,
)
from .records import Call, Fault, Identity, WebhookPost


@dataclass
class History:
    """Messages of one channel: top-level ones sorted by ts, thread replies per thread."""

    top_keys: list[int] = field(default_factory=list)
    top: list[dict[str, Any]] = field(default_factory=list)
    by_ts: dict[str, dict[str, Any]] = field(default_factory=dict)
    threads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @staticmethod
    def is_top(msg: dict[str, Any]) -> bool:
        tts = msg.get("thread_ts")
        return tts is None or tts == msg["ts"] or msg.get("subtype") == "thread_broadcast"

    def insert(self, msg: dict[str, Any]) -> None:
        ts = msg["ts"]
        key = ts_us(ts)
        self.by_ts[ts] = msg
        if self.is_top(msg):
            i = bisect_right(self.top_keys, key)
            self.top_keys.insert(i, key)
            self.top.insert(i, msg)
        tts = msg.get("thread_ts")
        if tts is not None and tts != ts:
            replies = self.threads.setdefault(tts, [])
            replies.append(msg)
            if len(replies) > 1 and ts_us(replies[-2]["ts"]) > key:
                replies.sort(key=lambda m: ts_us(m["ts"]))

    def remove(self, ts: str) -> dict[str, Any] | None:
        msg = self.by_ts.pop(ts, None)
        if msg is None:
            return None
        if self.is_top(msg):
            key = ts_us(ts)
            i = bisect_left(self.top_keys, key)
            while i < len(self.top) and self.top[i] is not msg:
                i += 1
            if i < len(self.top):
                del self.top_keys[i]
                del self.top[i]
        tts = msg.get("thread_ts")
        if tts is not None and tts != ts and msg in self.threads.get(tts, []):
            self.threads[tts].remove(msg)
        return msg


class State:
    """The fake's data and knobs; FakeSlack adds seeding, queries, faults and the server to it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._address: tuple[str, int] | None = None  # where the server listens, once started
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)  # notified on every call and webhook POST
        self._connections: set[socket.socket] = set()  # open client connections, ended by stop()
        self._init_state()

    def _init_state(self) -> None:
        # knobs (plain attributes: tests set them directly)
        self.latency: float = 0.0
        self.socket_mode_url: str | None = None
        self.latency_for: dict[str, float] = {}
        self.per_channel_rate: float | None = None
        self.per_channel_burst: int = 1
        self.workspace_rate: float | None = None
        self.workspace_burst: float | None = None  # None: same as workspace_rate
        self.method_rate: dict[str, float] = {}  # per workspace+method token buckets, burst = rate
        self.validate_blocks: bool = True
        self.chat_write_public: bool = True  # bot may post in public channels it has not joined
        self.strict_users: bool = False  # DMs to unknown user ids -> channel_not_found
        self.oauth_response: dict[str, Any] = default_oauth_response()
        self.invalid_tokens: set[str] = set()
        self.revoked_tokens: set[str] = set()
        # workspaces, people, conversations
        self._tokens: dict[str, Identity] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._history: dict[str, History] = {}
        self._dm_by_user: dict[str, str] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._scheduled: list[dict[str, Any]] = []
        self._deleted: list[dict[str, Any]] = []
        # surfaces and files
        self._views: list[dict[str, Any]] = []
        self._view_state: dict[str, dict[str, Any]] = {}  # view_id -> current view object
        self._view_by_external: dict[str, str] = {}
        self._home_by_user: dict[str, str] = {}
        self._files: dict[str, dict[str, Any]] = {}
        # what was received, and the faults still to inject
        self._webhooks: list[WebhookPost] = []
        self._calls: list[Call] = []
        self._calls_by_method: dict[str, list[Call]] = {}
        self._faults: list[Fault] = []
        self._buckets: dict[tuple[str, str], list[float]] = {}
        self._last_ts_us = 0
        self._ids = itertools.count(1)
        self.stats: Counter[str] = Counter()
        self.errors: list[str] = []  # exceptions raised inside the fake (bugs), for debugging
        self._t0 = time.monotonic()

    @property
    def port(self) -> int:
        if self._address is None:
            raise RuntimeError("FakeSlack is not started")
        return self._address[1]

    @property
    def url(self) -> str:
        """Root URL of the server, e.g. http://127.0.0.1:PORT"""
        return f"http://{self._host}:{self.port}"

    # -- lookups shared by the handlers (lock held) ---------------------------------------------------

    def _new_ts(self) -> str:
        us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
        self._last_ts_us = us
        return fmt_ts(us)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):010d}"

    def _identity(self, token: str) -> Identity:
        ident = self._tokens.get(token)
        if ident is not None:
            return ident
        if token.startswith("xoxb-"):
            return Identity()
        return Identity(bot_id=None)

    def _hist(self, cid: str) -> History:
        hist = self._history.get(cid)
        if hist is None:
            hist = self._history[cid] = History()
        return hist

    def _dm(self, user: str, ident: Identity | None = None) -> dict[str, Any]:
        cid = self._dm_by_user.get(user)
        if cid is not None and cid in self._channels:
            return self._channels[cid]
        bot = ident.user_id if ident else BOT_USER_ID
        cid = "D" + user[1:]
        self._dm_by_user[user] = cid
        self._channels[cid] = {
            "id": cid,
            "name": user,
            "is_private": True,
            "is_archived": False,
            "is_ext_shared": False,
            "is_im": True,
            "is_mpim": False,
            "user": user,
            "members": {user, bot},
            "created": int(time.time()),
            "creator": bot,
            "team_id": ident.team_id if ident else TEAM_ID,
        }
        return self._channels[cid]

    def _channel(self, raw: Any, ident: Identity) -> dict[str, Any]:
        """Any existing channel (user ids resolve to their DM); channel_not_found otherwise."""
        if not raw or not isinstance(raw, str):
            raise SlackError("channel_not_found")
        if raw[:1] in ("U", "W"):
            if self.strict_users and raw not in self._users:
                raise SlackError("channel_not_found")
            return self._dm(raw, ident)
        ch = self._channels.get(raw)
        if ch is None:
            raise SlackError("channel_not_found")
        return ch

    def _postable(self, raw: Any, ident: Identity) -> dict[str, Any]:
        ch = self._channel(raw, ident)
        if ch["is_im"]:
            return ch
        if ch["is_archived"]:
            raise SlackError("is_archived")
        if ident.user_id not in ch["members"] and (
            ch["is_private"] or ch["is_mpim"] or not self.chat_write_public
        ):
            raise SlackError("not_in_channel")
        return ch

    def _readable(self, raw: Any, ident: Identity) -> dict[str, Any]:
        ch = self._channel(raw, ident)
        if not ch["is_im"] and ident.user_id not in ch["members"]:
            if ch["is_private"]:
                raise SlackError("channel_not_found")
            raise SlackError("not_in_channel")
        return ch

    def _message(self, ch: dict[str, Any], ts: Any) -> dict[str, Any]:
        msg = self._hist(ch["id"]).by_ts.get(norm_ts(ts) or "")
        if msg is None:
            raise SlackError("message_not_found")
        return msg

    def _attach_thread(self, cid: str, msg: dict[str, Any], thread_ts: str | None) -> None:
        if not thread_ts:
            return
        parent = self._hist(cid).by_ts.get(thread_ts)
        if parent is not None and parent.get("thread_ts") not in (None, parent["ts"]):
            thread_ts = parent["thread_ts"]  # a reply's ts: Slack threads under the root
            parent = self._hist(cid).by_ts.get(thread_ts)
        msg["thread_ts"] = thread_ts
        if parent is not None:
            msg["parent_user_id"] = parent.get("user")

    def _store(self, cid: str, msg: dict[str, Any], reactions: dict[str, list[str]] | None = None) -> None:
        """Keep a new message in its channel."""
        msg["channel"] = cid
        msg["reactions"] = {name: list(users) for name, users in (reactions or {}).items()}
        self._hist(cid).insert(msg)

    def _permalink(self, cid: str, ts: str, thread_ts: str | None = None) -> str:
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{cid}/p{ts.replace('.', '')}"
        if thread_ts and thread_ts != ts:
            link += f"?thread_ts={thread_ts}&cid={cid}"
        return link

    def _render(self, cid: str, msg: dict[str, Any], *, metadata: bool = False) -> dict[str, Any]:
        """A stored message as the Web API returns it (reactions as a list, thread summary on roots)."""
        out = {k: v for k, v in msg.items() if k not in ("channel", "reactions", "metadata")}
        reactions = msg.get("reactions")
        if reactions:
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in reactions.items()
                if users
            ]
        if metadata and msg.get("metadata"):
            out["metadata"] = msg["metadata"]
        if msg.get("thread_ts") in (None, msg["ts"]):
            replies = self._hist(cid).threads.get(msg["ts"])
            if replies:
                users = list(dict.fromkeys(r.get("user") for r in replies if r.get("user")))
                out.update(
                    thread_ts=msg["ts"],
                    reply_count=len(replies),
                    reply_users=users[:5],
                    reply_users_count=len(users),
                    latest_reply=replies[-1]["ts"],
                    is_locked=False,
                    subscribed=False,
                )
        return out
