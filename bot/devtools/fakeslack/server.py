"""A fake Slack Web API served over real HTTP, for slack_sdk's WebClient / AsyncWebClient.

Point a client at it with ``WebClient(token="xoxb-test", base_url=fake.base_url)``. Requests are
parsed the way Slack does (JSON bodies for chat.* / views.*, form bodies and query strings for the
rest), state changes as Slack's would, and every call is logged for assertions. Faults (429 with
Retry-After, 5xx, permanent errors, dropped connections), latency and Slack-like rate limits can be
switched on at any time from the test thread. All state is guarded by one lock.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import json
import math
import socket
import sys
import threading
import time
import traceback
import uuid
import zlib
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from . import blockkit

TEAM_ID = "T0001"
TEAM_NAME = "Loopline Test"
TEAM_DOMAIN = "example"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
APP_ID = "A0001"
DEFAULT_SCOPES = (
    "app_mentions:read,channels:history,channels:join,channels:read,chat:write,chat:write.public,"
    "commands,files:read,files:write,groups:history,groups:read,im:history,im:read,im:write,"
    "mpim:history,mpim:read,reactions:read,reactions:write,team:read,users:read,users:read.email"
)
NO_AUTH_METHODS = frozenset({"oauth.v2.access", "oauth.access", "oauth.v2.exchange", "api.test"})
APP_TOKEN_METHODS = frozenset({"apps.connections.open", "auth.test"})
JSON_PARAMS = ("blocks", "attachments", "metadata", "view", "files", "outputs")
_MISSING = object()


def default_oauth_response() -> dict[str, Any]:
    """The canned oauth.v2.access answer (bolt-python's mock, no Enterprise Grid)."""
    return {
        "ok": True,
        "app_id": "A0KRD7HC3",
        "authed_user": {
            "id": "U1234",
            "scope": "chat:write",
            "access_token": "xoxp-1234",
            "token_type": "user",
        },
        "scope": "chat:write,commands",
        "token_type": "bot",
        "access_token": "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
        "bot_user_id": "U0KRQLJ9H",
        "team": {"name": "Slack Softball Team", "id": "T9TK3CUKW"},
        "enterprise": None,
        "is_enterprise_install": False,
    }


# ---------------------------------------------------------------------------------------------------
# small helpers


def _ts_us(ts: Any) -> int:
    """'1700000000.000123' -> microseconds since the epoch (ValueError if malformed)."""
    secs, _, frac = str(ts).strip().partition(".")
    if not secs.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"bad ts {ts!r}")
    return int(secs) * 1_000_000 + int((frac + "000000")[:6])


def _fmt_ts(us: int) -> str:
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def _norm_ts(ts: Any) -> str | None:
    if ts is None or ts == "":
        return None
    try:
        return _fmt_ts(_ts_us(ts))
    except ValueError:
        return str(ts)


def _flag(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True", "TRUE")


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _tz_offset(tz: str) -> int:
    try:
        offset = datetime.now(ZoneInfo(tz)).utcoffset()
    except Exception:  # unknown zone or no tzdata: Slack would say UTC
        return 0
    return int(offset.total_seconds()) if offset is not None else 0


def _encode_cursor(kind: str, value: int) -> str:
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def _decode_cursor(cursor: Any, kind: str) -> int | None:
    if not cursor:
        return None
    try:
        prefix, _, value = base64.b64decode(str(cursor), validate=True).decode().partition(":")
        if prefix != kind:
            raise ValueError(prefix)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise SlackError("invalid_cursor") from exc


def _clip(text: Any, n: int = 60) -> str:
    s = str(text).replace("\n", "\\n")
    return s if len(s) <= n else s[: n - 1] + "…"


class SlackError(Exception):
    """Raised by method handlers: becomes ``{"ok": false, "error": error, **extra}``."""

    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.extra = extra


@dataclass
class Call:
    """One Web API request as the fake received and answered it."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    status: int
    response: dict[str, Any]
    at: float  # time.monotonic() when the request arrived
    token: str | None = None
    team_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return self.response.get("error")

    @property
    def channel(self) -> str | None:
        return self.params.get("channel") or self.params.get("channel_id")

    def summary(self, t0: float = 0.0) -> str:
        result = "ok" if self.ok else f"error={self.error}"
        bits = [f"+{self.at - t0:.3f}s", self.method, str(self.status), result]
        for key in ("channel", "channel_id", "user", "user_id", "ts", "thread_ts", "trigger_id", "view_id"):
            if self.params.get(key) not in (None, ""):
                bits.append(f"{key}={self.params[key]}")
        if self.params.get("text"):
            bits.append(f"text={_clip(self.params['text'])!r}")
        return " ".join(bits)


@dataclass
class Fault:
    """A pending injected failure; see FakeSlack.fail_next."""

    method: str
    error: str
    status: int
    retry_after: float | None
    remaining: int | None  # None = forever
    channel: str | None = None
    disconnect: bool = False
    hits: int = 0


@dataclass
class Identity:
    team_id: str = TEAM_ID
    team_name: str = TEAM_NAME
    user_id: str = BOT_USER_ID
    bot_id: str | None = BOT_ID
    scopes: str = DEFAULT_SCOPES
    domain: str = TEAM_DOMAIN
    enterprise_id: str | None = None  # an Enterprise Grid workspace's organisation


@dataclass
class WebhookPost:
    name: str
    body: Any
    headers: dict[str, str]
    at: float


@dataclass
class _History:
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
        key = _ts_us(ts)
        self.by_ts[ts] = msg
        if self.is_top(msg):
            i = bisect_right(self.top_keys, key)
            self.top_keys.insert(i, key)
            self.top.insert(i, msg)
        tts = msg.get("thread_ts")
        if tts is not None and tts != ts:
            replies = self.threads.setdefault(tts, [])
            replies.append(msg)
            if len(replies) > 1 and _ts_us(replies[-2]["ts"]) > key:
                replies.sort(key=lambda m: _ts_us(m["ts"]))

    def remove(self, ts: str) -> dict[str, Any] | None:
        msg = self.by_ts.pop(ts, None)
        if msg is None:
            return None
        if self.is_top(msg):
            key = _ts_us(ts)
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


# ---------------------------------------------------------------------------------------------------
# HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr: tuple[str, int], fake: FakeSlack) -> None:
        self.fake = fake
        super().__init__(addr, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # clients that gave up (timeouts, injected disconnects, stop()) are not worth a traceback
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError | OSError):
            self.fake._record_internal_error(str(client_address), exc or RuntimeError("unknown"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeSlack/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections are closed after this
    server: _Server

    def log_message(self, fmt: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.fake._track_connection(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track_connection(self.connection, False)

    def do_POST(self) -> None:
        self._serve(self._read_body())

    def do_GET(self) -> None:
        self._serve(b"")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = _int(self.headers.get("Content-Length"), 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self, body: bytes) -> None:
        fake = self.server.fake
        try:
            result = fake._handle_http(self.command, self.path, dict(self.headers.items()), body)
        except Exception as exc:  # a bug in the fake: answer, and remember it for the test
            fake._record_internal_error(self.path, exc)
            result = (500, {"ok": False, "error": "fake_internal_error", "detail": repr(exc)}, {})
        if result is None:  # injected disconnect
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, payload, headers = result
        if isinstance(payload, bytes | str):
            data = payload.encode() if isinstance(payload, str) else payload
            ctype = "text/plain; charset=utf-8"
        else:
            data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            ctype = "application/json; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


# ---------------------------------------------------------------------------------------------------
# the fake


class FakeSlack:
    """A stateful stand-in for slack.com/api, listening on 127.0.0.1 (ephemeral port by default)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._connections: set[socket.socket] = set()
        self._handlers: dict[str, Callable[[dict[str, Any], Identity], dict[str, Any]]] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "bots.info": self._bots_info,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.scheduleMessage": self._chat_schedule_message,
            "chat.deleteScheduledMessage": self._chat_delete_scheduled_message,
            "chat.scheduledMessages.list": self._chat_scheduled_messages_list,
            "conversations.join": self._conversations_join,
            "conversations.leave": self._conversations_leave,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.members": self._conversations_members,
            "conversations.list": self._conversations_list,
            "users.conversations": self._users_conversations,
            "reactions.get": self._reactions_get,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "users.lookupByEmail": self._users_lookup_by_email,
            "team.info": self._team_info,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
            "views.update": self._views_update,
            "views.push": self._views_push,
            "files.upload": self._files_upload_v1,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
            "apps.connections.open": self._apps_connections_open,
            "oauth.v2.access": self._oauth_v2_access,
            "oauth.access": self._oauth_v2_access,
        }
        self._init_state()

    # -- lifecycle ----------------------------------------------------------------------------------

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
        # state
        self._tokens: dict[str, Identity] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._history: dict[str, _History] = {}
        self._dm_by_user: dict[str, str] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._scheduled: list[dict[str, Any]] = []
        self._deleted: list[dict[str, Any]] = []
        self._views: list[dict[str, Any]] = []
        self._view_state: dict[str, dict[str, Any]] = {}  # view_id -> current view object
        self._view_by_external: dict[str, str] = {}
        self._home_by_user: dict[str, str] = {}
        self._files: dict[str, dict[str, Any]] = {}
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
        self.add_user(
            BOT_USER_ID,
            name="loopline",
            real_name="Loopline",
            is_bot=True,
            tz="America/Los_Angeles",
        )
        self._users[BOT_USER_ID]["bot_id"] = BOT_ID

    def reset(self) -> None:
        """Forget everything (calls, faults, knobs, users, channels, messages) but keep serving."""
        with self._lock:
            self._init_state()

    def start(self) -> FakeSlack:
        if self._server is not None:
            return self
        self._server = _Server((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fakeslack:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:  # end idle keep-alive connections, or their threads keep serving
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Root URL of the server, e.g. http://127.0.0.1:PORT"""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Web API base URL for WebClient(base_url=...); ends with '/api/'."""
        return f"{self.url}/api/"

    def response_url(self, name: str = "default") -> str:
        """A response_url whose POSTs are recorded under ``name`` (see webhook_posts)."""
        return f"{self.url}/webhook/{name}"

    def _track_connection(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _record_internal_error(self, path: str, exc: BaseException) -> None:
        with self._lock:
            self.errors.append(f"{path}: {exc!r}")

    # -- seeding ------------------------------------------------------------------------------------

    def register_token(
        self,
        token: str,
        *,
        team_id: str = TEAM_ID,
        team_name: str = TEAM_NAME,
        user_id: str = BOT_USER_ID,
        bot_id: str | None = BOT_ID,
        scopes: str = DEFAULT_SCOPES,
        domain: str = TEAM_DOMAIN,
        enterprise_id: str | None = None,
    ) -> None:
        """Bind a token to a workspace identity (auth.test, per-workspace rate limits)."""
        with self._lock:
            self._tokens[token] = Identity(team_id, team_name, user_id, bot_id, scopes, domain, enterprise_id)

    def add_user(
        self,
        user_id: str,
        name: str | None = None,
        *,
        real_name: str | None = None,
        display_name: str | None = None,
        email: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        is_primary_owner: bool = False,
        is_bot: bool = False,
        is_restricted: bool = False,
        deleted: bool = False,
        tz: str = "America/New_York",
        tz_offset: int | None = None,
        team_id: str = TEAM_ID,
        enterprise_id: str | None = None,
        is_stranger: bool = False,
    ) -> str:
        """A person. `team_id` other than the asking token's workspace makes them someone of another
        workspace (Slack Connect); `enterprise_id` puts them in an Enterprise Grid organisation."""
        name = name or user_id.lower()
        with self._lock:
            self._users[user_id] = {
                "id": user_id,
                "team_id": team_id,
                "name": name,
                "real_name": real_name or name,
                "display_name": display_name if display_name is not None else name,
                "email": email,
                "is_admin": is_admin or is_owner,
                "is_owner": is_owner,
                "is_primary_owner": is_primary_owner,
                "is_bot": is_bot,
                "is_restricted": is_restricted,
                "deleted": deleted,
                "tz": tz,
                "tz_offset": _tz_offset(tz) if tz_offset is None else tz_offset,
                "enterprise_id": enterprise_id,
                "is_stranger": is_stranger,
            }
        return user_id

    def add_channel(
        self,
        channel_id: str,
        name: str | None = None,
        *,
        is_private: bool = False,
        members: Iterable[str] = (),
        bot_member: bool = True,
        archived: bool = False,
        ext_shared: bool = False,
        team_id: str = TEAM_ID,
        org_shared: bool = False,
        connected_teams: Iterable[str] = (),
    ) -> str:
        """`ext_shared`: a Slack Connect channel (shared with `connected_teams` of other organisations);
        `org_shared`: shared between workspaces of one Enterprise Grid organisation."""
        with self._lock:
            mem = set(members)
            if bot_member:
                mem.add(BOT_USER_ID)
            self._channels[channel_id] = {
                "id": channel_id,
                "name": name or channel_id.lower(),
                "is_private": is_private,
                "is_archived": archived,
                "is_ext_shared": ext_shared,
                "is_org_shared": org_shared,
                "is_pending_ext_shared": False,
                "connected_teams": list(connected_teams) or (["T0EXT"] if ext_shared else []),
                "is_im": False,
                "is_mpim": False,
                "members": mem,
                "created": int(time.time()),
                "creator": next(iter(sorted(mem - {BOT_USER_ID})), BOT_USER_ID),
                "team_id": team_id,
            }
            self._history.setdefault(channel_id, _History())
        return channel_id

    def add_message(
        self,
        channel: str,
        text: str,
        user: str = "U0HUMAN",
        ts: str | None = None,
        thread_ts: str | None = None,
        *,
        blocks: list[dict[str, Any]] | None = None,
        reactions: dict[str, list[str]] | None = None,
        subtype: str | None = None,
        bot_id: str | None = None,
        files: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Seed a message as if a person posted it; returns its ts."""
        with self._lock:
            ch = self._seed_channel(channel)
            if ts is None:
                ts = self._new_ts()
            else:
                ts = _fmt_ts(_ts_us(ts))
                self._last_ts_us = max(self._last_ts_us, _ts_us(ts))
            msg: dict[str, Any] = {"type": "message", "ts": ts, "user": user, "text": text}
            if subtype:
                msg["subtype"] = subtype
            if bot_id:
                msg["bot_id"] = bot_id
            if blocks is not None:
                msg["blocks"] = blocks
            if files:
                msg["files"] = files
            if metadata:
                msg["metadata"] = metadata
            msg["team"] = ch.get("team_id", TEAM_ID)
            if thread_ts is not None:
                self._attach_thread(ch["id"], msg, _norm_ts(thread_ts))
            msg["channel"] = ch["id"]
            msg["reactions"] = {k: list(v) for k, v in (reactions or {}).items()}
            self._hist(ch["id"]).insert(msg)
        return ts

    def edit_message(self, channel: str, ts: str, text: str, *, blocks: Any = _MISSING) -> None:
        """Edit a stored message in place (as if its author edited it)."""
        with self._lock:
            msg = self._hist(self._seed_channel(channel)["id"]).by_ts[_norm_ts(ts) or ts]
            msg["text"] = text
            if blocks is not _MISSING:
                msg["blocks"] = blocks
            msg["edited"] = {"user": msg.get("user"), "ts": self._new_ts()}

    def delete_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """Delete a stored message (as if its author deleted it)."""
        with self._lock:
            cid = self._seed_channel(channel)["id"]
            msg = self._hist(cid).remove(_norm_ts(ts) or ts)
            if msg is not None:
                self._deleted.append(dict(msg))
            return msg

    def add_reaction(self, channel: str, ts: str, name: str, user: str) -> None:
        with self._lock:
            msg = self._hist(self._seed_channel(channel)["id"]).by_ts[_norm_ts(ts) or ts]
            users = msg["reactions"].setdefault(name.strip(":"), [])
            if user not in users:
                users.append(user)

    def share_channel(self, channel: str, *, ext_shared: bool = True, pending: bool = False,
                      teams: Iterable[str] = ("T0EXT",)) -> None:
        """Share (or, with ext_shared=False, unshare) a channel with another organisation, as if its
        owners did it in Slack; `pending` is an invitation not yet accepted."""
        with self._lock:
            ch = self._channels[channel]
            ch["is_ext_shared"], ch["is_pending_ext_shared"] = ext_shared and not pending, pending
            ch["connected_teams"] = list(teams) if ext_shared else []

    def archive(self, channel: str, archived: bool = True) -> None:
        with self._lock:
            self._channels[channel]["is_archived"] = archived

    def unarchive(self, channel: str) -> None:
        self.archive(channel, False)

    def delete_channel(self, channel: str) -> None:
        with self._lock:
            self._channels.pop(channel, None)
            self._history.pop(channel, None)

    def add_member(self, channel: str, user: str = BOT_USER_ID) -> None:
        with self._lock:
            self._channels[channel]["members"].add(user)

    def remove_member(self, channel: str, user: str = BOT_USER_ID) -> None:
        """Remove a member (default: the bot, i.e. the bot was kicked)."""
        with self._lock:
            self._channels[channel]["members"].discard(user)

    # -- fault injection ----------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        status: int | None = None,
        retry_after: float | None = 1,
        times: int | None = 1,
        channel: str | None = None,
        *,
        disconnect: bool = False,
    ) -> Fault:
        """Make the next ``times`` calls of ``method`` fail (times=None: until clear_faults()).

        ``method`` is a Web API method, "*" for any, "upload" for the raw file upload URL or "webhook"
        for response_url POSTs. status defaults to 429 for "ratelimited" and 200 otherwise; a 5xx
        status with the default error answers ``internal_error``. disconnect=True closes the
        connection without an answer instead. ``channel`` limits the fault to calls for that channel.
        """
        if status is None:
            status = 429 if error == "ratelimited" else 200
        if status >= 500 and error == "ratelimited":
            error = "service_unavailable" if status == 503 else "internal_error"
        fault = Fault(method, error, status, retry_after, times, channel, disconnect)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _take_fault(self, method: str, channels: tuple[str | None, ...]) -> Fault | None:
        if not self._faults:
            return None
        for fault in self._faults:
            if fault.method not in (method, "*"):
                continue
            if fault.method == "*" and method in ("upload", "webhook"):
                continue
            if fault.channel is not None and fault.channel not in channels:
                continue
            fault.hits += 1
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
            return fault
        return None

    @staticmethod
    def _fault_response(fault: Fault) -> tuple[int, dict[str, Any], dict[str, str]]:
        body: dict[str, Any] = {"ok": False, "error": fault.error}
        headers: dict[str, str] = {}
        if fault.status == 429:
            headers["Retry-After"] = str(math.ceil(fault.retry_after or 0))
        if fault.error == "missing_scope":
            body["needed"] = "chat:write"
            body["provided"] = "commands"
        return fault.status, body, headers

    # -- rate limits --------------------------------------------------------------------------------

    def _take_token(self, key: tuple[str, str], rate: float, burst: float, now: float) -> float:
        """Token bucket; 0.0 when allowed (a token is NOT yet taken), else seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [float(burst), now]
        tokens = min(float(burst), bucket[0] + (now - bucket[1]) * rate)
        bucket[0], bucket[1] = tokens, now
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate

    def _rate_limited(self, method: str, channel: str | None, ident: Identity) -> float:
        checks: list[tuple[tuple[str, str], float, float]] = []
        if method == "chat.postMessage":
            if self.workspace_rate:
                burst = self.workspace_burst or self.workspace_rate
                checks.append((("ws", ident.team_id), self.workspace_rate, max(1.0, burst)))
            if self.per_channel_rate and channel:
                checks.append((("ch", channel), self.per_channel_rate, max(1.0, self.per_channel_burst)))
        rate = self.method_rate.get(method)
        if rate:
            checks.append((("m:" + method, ident.team_id), rate, max(1.0, rate)))
        if not checks:
            return 0.0
        now = time.monotonic()
        wait = max(self._take_token(key, r, b, now) for key, r, b in checks)
        if wait == 0.0:
            for key, _, _ in checks:
                self._buckets[key][0] -= 1.0
        return wait

    # -- request handling ---------------------------------------------------------------------------

    def _handle_http(
        self, verb: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]] | None:
        arrived = time.monotonic()
        parts = urlsplit(path)
        route = parts.path
        lower_headers = {k.lower(): v for k, v in headers.items()}
        if route.startswith("/api/"):
            return self._handle_api(route[5:], parts.query, lower_headers, body, arrived)
        if route.startswith("/upload/") and verb == "POST":
            return self._handle_upload(route[8:], body)
        if route.startswith("/webhook/") and verb == "POST":
            return self._handle_webhook(route[9:], lower_headers, body, arrived)
        if route in ("/", "/health"):
            return 200, {"ok": True, "fake": "slack"}, {}
        return 404, {"ok": False, "error": "not_found"}, {}

    @staticmethod
    def _parse_params(query: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
        ctype = headers.get("content-type", "").lower()
        if body:
            if "application/json" in ctype:
                try:
                    data = json.loads(body)
                except ValueError as exc:
                    raise SlackError("invalid_json") from exc
                if not isinstance(data, dict):
                    raise SlackError("invalid_json")
                params.update(data)
            elif "multipart/form-data" in ctype:
                raise SlackError("invalid_form_data")
            else:
                try:
                    params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                except UnicodeDecodeError as exc:
                    raise SlackError("invalid_charset") from exc
        for key in JSON_PARAMS:
            value = params.get(key)
            if isinstance(value, str) and value[:1] in ("[", "{"):
                # on failure it stays a string; the handler answers invalid_*_format
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(value)
        return params

    @staticmethod
    def _token_from(headers: dict[str, str], params: dict[str, Any]) -> str | None:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip() or None
        token = params.pop("token", None)
        return str(token) if token else None

    def _identity(self, token: str) -> Identity:
        ident = self._tokens.get(token)
        if ident is not None:
            return ident
        if token.startswith("xoxb-"):
            return Identity()
        return Identity(bot_id=None)

    def _handle_api(
        self, method: str, query: str, headers: dict[str, str], body: bytes, arrived: float
    ) -> tuple[int, Any, dict[str, str]] | None:
        parse_error: SlackError | None = None
        try:
            params = self._parse_params(query, headers, body)
        except SlackError as exc:
            params, parse_error = {}, exc
        token = self._token_from(headers, params)
        delay = self.latency_for.get(method, self.latency)
        if delay:
            time.sleep(delay)
        disconnect = False
        with self._lock:
            ident = self._identity(token) if token else None
            scopes = ident.scopes if ident else DEFAULT_SCOPES
            out_headers = {"x-oauth-scopes": scopes, "x-accepted-oauth-scopes": ""}
            try:
                if parse_error is not None:
                    raise parse_error
                status, resp, extra = self._process(method, params, token, ident, headers)
            except SlackError as exc:
                status, resp, extra = exc.status, {"ok": False, "error": exc.error, **exc.extra}, exc.headers
            except _Disconnect:
                status, resp, extra, disconnect = 0, {"ok": False, "error": "disconnected"}, {}, True
            except Exception as exc:  # a bug in the fake: answer 500, keep the traceback for the test
                self.errors.append(f"{method}: {traceback.format_exc()}")
                status, resp, extra = (
                    500,
                    {"ok": False, "error": "fake_internal_error", "detail": repr(exc)},
                    {},
                )
            out_headers.update(extra)
            self.stats["calls"] += 1
            if status == 429:
                self.stats["429"] += 1
            elif status >= 500:
                self.stats["5xx"] += 1
            if not resp.get("ok"):
                self.stats["errors"] += 1
            call = Call(
                method, params, headers, status, resp, arrived, token, ident.team_id if ident else None
            )
            self._calls.append(call)
            self._calls_by_method.setdefault(method, []).append(call)
            self._cond.notify_all()
        if disconnect:
            return None
        return status, resp, out_headers

    def _process(
        self,
        method: str,
        params: dict[str, Any],
        token: str | None,
        ident: Identity | None,
        headers: dict[str, str],
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        handler = self._handlers.get(method)
        if handler is None:
            raise SlackError("unknown_method")
        if method not in NO_AUTH_METHODS:
            if not token or ident is None:
                raise SlackError("not_authed")
            if not token.startswith(("xoxb-", "xoxp-", "xapp-")) or token in self.invalid_tokens:
                raise SlackError("invalid_auth")
            if token in self.revoked_tokens:
                raise SlackError("token_revoked")
            is_app_token = token.startswith("xapp-")
            if is_app_token != (method == "apps.connections.open") and not (
                is_app_token and method in APP_TOKEN_METHODS
            ):
                raise SlackError("not_allowed_token_type")
        else:
            ident = ident or Identity()
        raw_channel = params.get("channel") or params.get("channel_id")
        channel_keys: tuple[str | None, ...] = (raw_channel,)
        if isinstance(raw_channel, str) and raw_channel[:1] in ("U", "W"):
            channel_keys = (raw_channel, self._dm_by_user.get(raw_channel, "D" + raw_channel[1:]))
        fault = self._take_fault(method, channel_keys)
        if fault is not None:
            if fault.disconnect:
                raise _Disconnect()
            return self._fault_response(fault)
        wait = self._rate_limited(method, channel_keys[-1], ident)
        if wait:
            return (
                429,
                {"ok": False, "error": "ratelimited"},
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if method in NO_AUTH_METHODS:
            params["_authorization"] = headers.get("authorization", "")
        try:
            data = handler(params, ident)
        finally:
            params.pop("_authorization", None)
        return 200, {"ok": True, **data}, {}

    def _handle_upload(self, file_id: str, body: bytes) -> tuple[int, Any, dict[str, str]] | None:
        delay = self.latency_for.get("upload", 0.0)
        if delay:
            time.sleep(delay)
        with self._lock:
            fault = self._take_fault("upload", (None,))
            if fault is not None:
                if fault.disconnect:
                    return None
                return fault.status, f"error: {fault.error}", {}
            record = self._files.get(file_id)
            if record is None:
                return 404, "file not found", {}
            record["content"] = body
            record["uploaded"] = True
            self.stats["uploads"] += 1
        return 200, f"OK - {len(body)}", {}

    def _handle_webhook(
        self, name: str, headers: dict[str, str], body: bytes, arrived: float
    ) -> tuple[int, Any, dict[str, str]] | None:
        delay = self.latency_for.get("webhook", 0.0)
        if delay:
            time.sleep(delay)
        text = body.decode("utf-8", errors="replace")
        parsed: Any
        try:
            parsed = json.loads(text)
        except ValueError:
            form = dict(parse_qsl(text))
            try:
                parsed = json.loads(form["payload"]) if "payload" in form else {"_raw": text}
            except ValueError:
                parsed = {"_raw": text}
        with self._lock:
            fault = self._take_fault("webhook", (name,))
            if fault is not None:
                if fault.disconnect:
                    return None
                return fault.status, fault.error, {}
            if self.validate_blocks and isinstance(parsed, dict) and isinstance(parsed.get("blocks"), list):
                errors = blockkit.check_message_blocks(parsed["blocks"])
                if errors:
                    return 400, "invalid_blocks", {}
            self._webhooks.append(WebhookPost(name, parsed, headers, arrived))
            self._cond.notify_all()
        return 200, "ok", {}

    # -- internal state helpers (lock held) -----------------------------------------------------------

    def _new_ts(self) -> str:
        us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
        self._last_ts_us = us
        return _fmt_ts(us)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):010d}"

    def _hist(self, cid: str) -> _History:
        hist = self._history.get(cid)
        if hist is None:
            hist = self._history[cid] = _History()
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

    def _seed_channel(self, channel: str) -> dict[str, Any]:
        if channel[:1] in ("U", "W"):
            return self._dm(channel)
        if channel not in self._channels:
            raise KeyError(f"unknown channel {channel!r}: call add_channel() first")
        return self._channels[channel]

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
        msg = self._hist(ch["id"]).by_ts.get(_norm_ts(ts) or "")
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

    def _permalink(self, cid: str, ts: str, thread_ts: str | None = None) -> str:
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{cid}/p{ts.replace('.', '')}"
        if thread_ts and thread_ts != ts:
            link += f"?thread_ts={thread_ts}&cid={cid}"
        return link

    def _render(self, cid: str, msg: dict[str, Any], *, metadata: bool = False) -> dict[str, Any]:
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

    def _channel_obj(
        self, ch: dict[str, Any], ident: Identity, *, num_members: bool = False
    ) -> dict[str, Any]:
        if ch["is_im"]:
            return {
                "id": ch["id"],
                "created": ch["created"],
                "is_im": True,
                "is_org_shared": False,
                "user": ch["user"],
                "is_user_deleted": bool(self._users.get(ch["user"], {}).get("deleted")),
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

    def _user_obj(self, user: dict[str, Any], ident: Identity | None = None) -> dict[str, Any]:
        profile = {
            "real_name": user["real_name"],
            "real_name_normalized": user["real_name"],
            "display_name": user["display_name"],
            "display_name_normalized": user["display_name"],
            "team": user["team_id"],
        }
        if user.get("email"):
            profile["email"] = user["email"]
        if user.get("bot_id"):
            profile["bot_id"] = user["bot_id"]
        tz = user["tz"]
        out: dict[str, Any] = {
            "id": user["id"],
            "team_id": user["team_id"],
            "name": user["name"],
            "deleted": user["deleted"],
            "real_name": user["real_name"],
            "tz": tz,
            "tz_label": tz,
            "tz_offset": user["tz_offset"],
            "is_admin": user["is_admin"],
            "is_owner": user["is_owner"],
            "is_primary_owner": user["is_primary_owner"],
            "is_restricted": user["is_restricted"],
            "is_ultra_restricted": False,
            "is_bot": user["is_bot"],
            "is_app_user": False,
            "updated": int(time.time()),
            "profile": profile,
        }
        if user.get("enterprise_id"):
            out["enterprise_user"] = {
                "id": user["id"],
                "enterprise_id": user["enterprise_id"],
                "enterprise_name": f"Org {user['enterprise_id']}",
                "is_admin": user["is_admin"],
                "is_owner": user["is_owner"],
                "is_primary_owner": user["is_primary_owner"],
                "teams": [user["team_id"]],
            }
        if ident is not None and user["team_id"] != ident.team_id:
            # Slack adds is_stranger to people of a foreign workspace party to a shared channel.
            out["is_stranger"] = bool(user.get("is_stranger"))
        return out

    def _check_message_payload(self, params: dict[str, Any], *, require_content: bool = True) -> None:
        blocks, attachments = params.get("blocks"), params.get("attachments")
        if require_content and not (
            params.get("text") or blocks or attachments or params.get("markdown_text")
        ):
            raise SlackError("no_text")
        if params.get("markdown_text") and (params.get("text") or blocks):
            raise SlackError("markdown_text_conflict")
        if blocks is not None and not isinstance(blocks, list):
            raise SlackError("invalid_blocks_format")
        if attachments is not None:
            if not isinstance(attachments, list):
                raise SlackError("invalid_attachments")
            if len(attachments) > blockkit.MAX_ATTACHMENTS:
                raise SlackError("too_many_attachments")
        metadata = params.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise SlackError("invalid_metadata_format")
        if blocks and self.validate_blocks:
            errors = blockkit.check_message_blocks(blocks)
            if errors:
                raise SlackError("invalid_blocks", response_metadata={"messages": errors})

    def _bot_message(self, params: dict[str, Any], ident: Identity, ts: str) -> dict[str, Any]:
        text = params.get("text") or params.get("markdown_text") or ""
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
            if params.get(key) is not None:
                msg[key] = params[key]
        return msg

    # -- Web API methods ----------------------------------------------------------------------------

    def _api_test(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        if p.get("error"):
            raise SlackError(str(p["error"]))
        return {"args": {k: v for k, v in p.items() if not k.startswith("_")}}

    def _auth_test(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        out = {
            "url": f"https://{ident.domain}.slack.com/",
            "team": ident.team_name,
            "user": self._users.get(ident.user_id, {}).get("name", "loopline"),
            "team_id": ident.team_id,
            "user_id": ident.user_id,
            "is_enterprise_install": False,
        }
        if ident.enterprise_id:
            out["enterprise_id"] = ident.enterprise_id
        if ident.bot_id:
            out["bot_id"] = ident.bot_id
        return out

    def _bots_info(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        bot_id = p.get("bot") or ident.bot_id
        return {
            "bot": {
                "id": bot_id,
                "deleted": False,
                "name": "Loopline",
                "updated": int(time.time()),
                "app_id": APP_ID,
                "user_id": ident.user_id,
                "icons": {},
            }
        }

    def _chat_post_message(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        ch = self._postable(p.get("channel"), ident)
        self._check_message_payload(p)
        thread_ts = p.get("thread_ts")
        if thread_ts not in (None, ""):
            try:
                _ts_us(thread_ts)
            except ValueError as exc:
                raise SlackError("invalid_thread_ts") from exc
        msg = self._bot_message(p, ident, self._new_ts())
        self._attach_thread(ch["id"], msg, _norm_ts(thread_ts))
        if msg.get("thread_ts") and _flag(p.get("reply_broadcast")):
            msg["subtype"] = "thread_broadcast"
        msg["channel"] = ch["id"]
        msg["reactions"] = {}
        self._hist(ch["id"]).insert(msg)
        return {"channel": ch["id"], "ts": msg["ts"], "message": self._render(ch["id"], msg, metadata=True)}

    def _chat_update(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        ch = self._channel(p.get("channel"), ident)
        msg = self._message(ch, p.get("ts"))
        if msg.get("user") != ident.user_id and (not msg.get("bot_id") or msg.get("bot_id") != ident.bot_id):
            raise SlackError("cant_update_message")
        if ch["is_archived"]:
            raise SlackError("is_inactive")
        has_content = any(p.get(k) is not None for k in ("text", "blocks", "attachments", "markdown_text"))
        if not has_content:
            raise SlackError("no_text")
        self._check_message_payload(p, require_content=False)
        if p.get("text") is not None or p.get("markdown_text") is not None:
            msg["text"] = str(p.get("text") or p.get("markdown_text") or "")[: blockkit.MAX_TEXT]
        for key in ("blocks", "attachments", "metadata"):
            if p.get(key) is not None:
                msg[key] = p[key]
        msg["edited"] = {"user": ident.user_id, "ts": self._new_ts()}
        return {
            "channel": ch["id"],
            "ts": msg["ts"],
            "text": msg["text"],
            "message": self._render(ch["id"], msg, metadata=True),
        }

    def _chat_delete(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        ch = self._channel(p.get("channel"), ident)
        msg = self._message(ch, p.get("ts"))
        if msg.get("user") != ident.user_id and (not msg.get("bot_id") or msg.get("bot_id") != ident.bot_id):
            raise SlackError("cant_delete_message")
        self._hist(ch["id"]).remove(msg["ts"])
        self._deleted.append(dict(msg))
        return {"channel": ch["id"], "ts": msg["ts"]}

    def _chat_post_ephemeral(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        ch = self._postable(p.get("channel"), ident)
        user = p.get("user")
        if not user:
            raise SlackError("user_not_in_channel")
        humans = {m for m in ch["members"] if not self._users.get(m, {}).get("is_bot")}
        humans.discard(ident.user_id)
        # channels seeded with people check membership; an unpopulated channel accepts anyone
        if not ch["is_im"] and humans and user not in ch["members"]:
            raise SlackError("user_not_in_channel")
        if ch["is_im"] and user != ch["user"]:
            raise SlackError("user_not_in_channel")
        self._check_message_payload(p)
        ts = self._new_ts()
        self._ephemerals.append(
            {
                "channel": ch["id"],
                "user": user,
                "text": p.get("text") or "",
                "blocks": p.get("blocks"),
                "attachments": p.get("attachments"),
                "thread_ts": _norm_ts(p.get("thread_ts")),
                "ts": ts,
            }
        )
        return {"message_ts": ts}

    def _chat_get_permalink(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        ch = self._channel(p.get("channel"), ident)
        msg = self._message(ch, p.get("message_ts"))
        return {"channel": ch["id"], "permalink": self._permalink(ch["id"], msg["ts"], msg.get("thread_ts"))}

    def _chat_schedule_message(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        ch = self._postable(p.get("channel"), ident)
        post_at = _int(p.get("post_at"), -1)
        now = int(time.time())
        if post_at < 0:
            raise SlackError("invalid_time")
        if post_at < now:
            raise SlackError("time_in_past")
        if post_at > now + 120 * 86400:
            raise SlackError("time_too_far")
        self._check_message_payload(p)
        sid = self._new_id("Q")
        msg = self._bot_message(p, ident, self._new_ts())
        if p.get("thread_ts"):
            msg["thread_ts"] = _norm_ts(p.get("thread_ts"))
        self._scheduled.append(
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

    def _chat_delete_scheduled_message(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        ch = self._channel(p.get("channel"), ident)
        for i, item in enumerate(self._scheduled):
            if item["id"] == p.get("scheduled_message_id") and item["channel"] == ch["id"]:
                del self._scheduled[i]
                return {}
        raise SlackError("invalid_scheduled_message_id")

    def _chat_scheduled_messages_list(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        items = [
            {
                "id": s["id"],
                "channel_id": s["channel"],
                "post_at": s["post_at"],
                "date_created": s["date_created"],
                "text": s["text"],
            }
            for s in self._scheduled
            if not p.get("channel") or s["channel"] == p.get("channel")
        ]
        return {"scheduled_messages": items, "response_metadata": {"next_cursor": ""}}

    def _conversations_join(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        raw = p.get("channel")
        ch = self._channels.get(raw) if isinstance(raw, str) else None
        if ch is None:
            raise SlackError("channel_not_found")
        if ch["is_im"] or ch["is_mpim"] or ch["is_private"]:
            raise SlackError("method_not_supported_for_channel_type")
        if ch["is_archived"]:
            raise SlackError("is_archived")
        already = ident.user_id in ch["members"]
        ch["members"].add(ident.user_id)
        out: dict[str, Any] = {"channel": self._channel_obj(ch, ident)}
        if already:
            out["warning"] = "already_in_channel"
            out["response_metadata"] = {"warnings": ["already_in_channel"]}
        return out

    def _conversations_leave(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        ch = self._channel(p.get("channel"), ident)
        if ch["is_im"]:
            raise SlackError("method_not_supported_for_channel_type")
        if ident.user_id not in ch["members"]:
            return {"not_in_channel": True}
        ch["members"].discard(ident.user_id)
        return {}

    def _conversations_info(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        ch = self._channel(p.get("channel"), ident)
        if ch["is_private"] and not ch["is_im"] and ident.user_id not in ch["members"]:
            raise SlackError("channel_not_found")
        return {"channel": self._channel_obj(ch, ident, num_members=_flag(p.get("include_num_members")))}

    def _conversations_open(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        if p.get("channel"):
            ch = self._channel(p.get("channel"), ident)
            return {"no_op": True, "already_open": True, "channel": self._channel_obj(ch, ident)}
        users = [u.strip() for u in str(p.get("users") or "").split(",") if u.strip()]
        if not users:
            raise SlackError("users_list_not_supplied")
        unknown = [u for u in users if self.strict_users and u not in self._users]
        if unknown:
            raise SlackError("user_not_found")
        if len(users) == 1:
            existed = users[0] in self._dm_by_user
            ch = self._dm(users[0], ident)
        else:
            members = {*users, ident.user_id}
            cid = "G" + format(zlib.crc32(",".join(sorted(members)).encode()), "010d")
            existed = cid in self._channels
            if not existed:
                self._channels[cid] = {
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
            ch = self._channels[cid]
        out: dict[str, Any] = {
            "channel": self._channel_obj(ch, ident) if _flag(p.get("return_im")) else {"id": ch["id"]}
        }
        if existed:
            out.update(no_op=True, already_open=True)
        return out

    @staticmethod
    def _bounds(p: dict[str, Any]) -> tuple[int, int, bool]:
        try:
            lo = _ts_us(p["oldest"]) if p.get("oldest") not in (None, "") else 0
            hi = _ts_us(p["latest"]) if p.get("latest") not in (None, "") else 1 << 62
        except ValueError as exc:
            raise SlackError("invalid_ts_latest" if "latest" in str(exc) else "invalid_ts_oldest") from exc
        return lo, hi, _flag(p.get("inclusive"))

    def _conversations_history(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        ch = self._readable(p.get("channel"), ident)
        hist = self._hist(ch["id"])
        lo, hi, inclusive = self._bounds(p)
        limit = max(1, min(_int(p.get("limit"), 100), 999))
        start = bisect_left(hist.top_keys, lo) if inclusive else bisect_right(hist.top_keys, lo)
        end = bisect_right(hist.top_keys, hi) if inclusive else bisect_left(hist.top_keys, hi)
        before = _decode_cursor(p.get("cursor"), "next_ts")
        if before is not None:
            end = min(end, bisect_left(hist.top_keys, before))
        page_start = max(start, end - limit)
        page = hist.top[page_start:end][::-1]
        metadata = _flag(p.get("include_all_metadata"))
        has_more = page_start > start
        out: dict[str, Any] = {
            "messages": [self._render(ch["id"], m, metadata=metadata) for m in page],
            "has_more": has_more,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        if p.get("latest"):
            out["latest"] = p["latest"]
        if has_more:
            out["response_metadata"] = {"next_cursor": _encode_cursor("next_ts", hist.top_keys[page_start])}
        return out

    def _conversations_replies(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        ch = self._readable(p.get("channel"), ident)
        hist = self._hist(ch["id"])
        ts = _norm_ts(p.get("ts"))
        if not ts:
            raise SlackError("thread_not_found")
        parent = hist.by_ts.get(ts)
        if parent is not None and parent.get("thread_ts") not in (None, parent["ts"]):
            ts = parent["thread_ts"]
            parent = hist.by_ts.get(ts)
        replies = hist.threads.get(ts, [])
        if parent is None and not replies:
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
        lo, hi, inclusive = self._bounds(p)
        limit = max(1, min(_int(p.get("limit"), 1000), 1000))
        after = _decode_cursor(p.get("cursor"), "next_ts")
        selected: list[dict[str, Any]] = [] if after is not None else [parent]
        for reply in replies:
            key = _ts_us(reply["ts"])
            if after is not None and key < after:
                continue
            if (key > lo or (inclusive and key == lo)) and (key < hi or (inclusive and key == hi)):
                selected.append(reply)
        page, rest = selected[:limit], selected[limit:]
        metadata = _flag(p.get("include_all_metadata"))
        out: dict[str, Any] = {
            "messages": [self._render(ch["id"], m, metadata=metadata) for m in page],
            "has_more": bool(rest),
        }
        if rest:
            out["response_metadata"] = {"next_cursor": _encode_cursor("next_ts", _ts_us(rest[0]["ts"]))}
        return out

    @staticmethod
    def _page(items: list[Any], p: dict[str, Any], default_limit: int) -> tuple[list[Any], dict[str, Any]]:
        offset = _decode_cursor(p.get("cursor"), "offset") or 0
        limit = max(1, min(_int(p.get("limit"), default_limit) or default_limit, 1000))
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        return page, {"next_cursor": _encode_cursor("offset", offset + limit) if more else ""}

    def _conversations_members(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        ch = self._channel(p.get("channel"), ident)
        if ch["is_private"] and not ch["is_im"] and ident.user_id not in ch["members"]:
            raise SlackError("channel_not_found")
        page, meta = self._page(sorted(ch["members"]), p, 100)
        return {"members": page, "response_metadata": meta}

    def _list_channels(self, p: dict[str, Any], ident: Identity, member: str | None) -> dict[str, Any]:
        types = {t.strip() for t in str(p.get("types") or "public_channel").split(",")}
        exclude_archived = _flag(p.get("exclude_archived"))
        out = []
        for ch in self._channels.values():
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
            out.append(self._channel_obj(ch, ident))
        page, meta = self._page(out, p, 100)
        return {"channels": page, "response_metadata": meta}

    def _conversations_list(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        return self._list_channels(p, ident, None)

    def _users_conversations(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        return self._list_channels(p, ident, p.get("user") or ident.user_id)

    def _reaction_target(self, p: dict[str, Any], ident: Identity) -> tuple[dict[str, Any], dict[str, Any]]:
        if not p.get("channel") and not p.get("file"):
            raise SlackError("no_item_specified")
        ch = self._channel(p.get("channel"), ident)
        ts = p.get("timestamp")
        if not ts:
            raise SlackError("no_item_specified")
        try:
            _ts_us(ts)
        except ValueError as exc:
            raise SlackError("bad_timestamp") from exc
        return ch, self._message(ch, ts)

    def _reactions_get(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        ch, msg = self._reaction_target(p, ident)
        message = self._render(ch["id"], msg)
        message["permalink"] = self._permalink(ch["id"], msg["ts"], msg.get("thread_ts"))
        return {"type": "message", "channel": ch["id"], "message": message}

    def _reactions_add(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        name = str(p.get("name") or "").strip(":")
        if not name:
            raise SlackError("invalid_name")
        _ch, msg = self._reaction_target(p, ident)
        users = msg["reactions"].setdefault(name, [])
        if ident.user_id in users:
            raise SlackError("already_reacted")
        if len(msg["reactions"]) > 23 and not users:
            raise SlackError("too_many_emoji")
        users.append(ident.user_id)
        return {}

    def _reactions_remove(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        name = str(p.get("name") or "").strip(":")
        _ch, msg = self._reaction_target(p, ident)
        users = msg["reactions"].get(name) or []
        if ident.user_id not in users:
            raise SlackError("no_reaction")
        users.remove(ident.user_id)
        if not users:
            del msg["reactions"][name]
        return {}

    def _users_info(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        user = self._users.get(str(p.get("user") or ""))
        if user is None:
            raise SlackError("user_not_found")
        out: dict[str, Any] = {"user": self._user_obj(user, ident)}
        if _flag(p.get("include_locale")):
            out["user"]["locale"] = "en-US"
        return out

    def _users_list(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        page, meta = self._page([self._user_obj(u) for u in self._users.values()], p, 200)
        return {"members": page, "cache_ts": int(time.time()), "response_metadata": meta}

    def _users_lookup_by_email(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        email = str(p.get("email") or "").lower()
        for user in self._users.values():
            if user.get("email") and user["email"].lower() == email:
                return {"user": self._user_obj(user)}
        raise SlackError("users_not_found")

    def _team_info(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        return {
            "team": {
                "id": p.get("team") or ident.team_id,
                "name": ident.team_name,
                "domain": ident.domain,
                "email_domain": "example.com",
                "url": f"https://{ident.domain}.slack.com/",
                "icon": {"image_default": True},
                "is_verified": False,
            }
        }

    # views

    def _view_arg(self, p: dict[str, Any]) -> dict[str, Any]:
        view = p.get("view")
        if not isinstance(view, dict):
            raise SlackError(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: view"]}
            )
        if len(json.dumps(view)) > blockkit.VIEW_MAX_BYTES:
            raise SlackError("view_too_large")
        if self.validate_blocks:
            errors = blockkit.check_view(view)
            if errors:
                raise SlackError("invalid_arguments", response_metadata={"messages": errors})
        return view

    def _make_view(
        self,
        view: dict[str, Any],
        ident: Identity,
        *,
        view_id: str | None = None,
        root_view_id: str | None = None,
        previous_view_id: str | None = None,
    ) -> dict[str, Any]:
        view_id = view_id or self._new_id("V")
        obj = {
            "id": view_id,
            "team_id": ident.team_id,
            "type": view.get("type"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{next(self._ids):08x}",
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": previous_view_id,
            "root_view_id": root_view_id or view_id,
            "app_id": APP_ID,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": ident.team_id,
            "bot_id": ident.bot_id,
        }
        ext = view.get("external_id")
        if ext:
            owner = self._view_by_external.get(ext)
            if owner is not None and owner != view_id:
                raise SlackError("duplicate_external_id")
            self._view_by_external[ext] = view_id
        self._view_state[view_id] = obj
        return obj

    def _check_trigger(self, p: dict[str, Any]) -> str:
        trigger = p.get("trigger_id") or p.get("interactivity_pointer")
        if not trigger:
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]},
            )
        trigger = str(trigger)
        if trigger.startswith("expired"):
            raise SlackError("expired_trigger_id")
        if trigger.startswith("invalid"):
            raise SlackError("invalid_trigger_id")
        return trigger

    def _views_open(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        trigger = self._check_trigger(p)
        view = self._view_arg(p)
        obj = self._make_view(view, ident)
        self._views.append(
            {
                "method": "views.open",
                "trigger_id": trigger,
                "view": view,
                "user_id": None,
                "view_id": obj["id"],
            }
        )
        return {"view": obj}

    def _views_push(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        trigger = self._check_trigger(p)
        view = self._view_arg(p)
        obj = self._make_view(view, ident)
        self._views.append(
            {
                "method": "views.push",
                "trigger_id": trigger,
                "view": view,
                "user_id": None,
                "view_id": obj["id"],
            }
        )
        return {"view": obj}

    def _views_update(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        view_id = p.get("view_id") or self._view_by_external.get(str(p.get("external_id") or ""))
        if not p.get("view_id") and not p.get("external_id"):
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] view_id or external_id required"]},
            )
        current = self._view_state.get(str(view_id or ""))
        if current is None:
            raise SlackError("not_found")
        if p.get("hash") and p["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        view = self._view_arg(p)
        obj = self._make_view(
            view,
            ident,
            view_id=current["id"],
            root_view_id=current["root_view_id"],
            previous_view_id=current["previous_view_id"],
        )
        user = next((u for u, v in self._home_by_user.items() if v == current["id"]), None)
        self._views.append(
            {
                "method": "views.update",
                "trigger_id": None,
                "view": view,
                "user_id": user,
                "view_id": obj["id"],
            }
        )
        return {"view": obj}

    def _views_publish(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        user = p.get("user_id")
        if not user:
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: user_id"]},
            )
        view = self._view_arg(p)
        if view.get("type") != "home":
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] must be home [json-pointer:/view/type]"]},
            )
        current_id = self._home_by_user.get(user)
        current = self._view_state.get(current_id) if current_id else None
        if p.get("hash") and current is not None and p["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        obj = self._make_view(view, ident, view_id=current_id)
        self._home_by_user[user] = obj["id"]
        self._views.append(
            {
                "method": "views.publish",
                "trigger_id": None,
                "view": view,
                "user_id": user,
                "view_id": obj["id"],
            }
        )
        return {"view": obj}

    # files

    def _files_upload_v1(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        raise SlackError("method_deprecated")

    def _files_get_upload_url_external(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        filename = p.get("filename")
        length = _int(p.get("length"), -1)
        if not filename or length < 0:
            raise SlackError("invalid_arguments")
        file_id = self._new_id("F")
        self._files[file_id] = {
            "id": file_id,
            "name": str(filename),
            "title": str(filename),
            "length": length,
            "alt_txt": p.get("alt_txt"),
            "snippet_type": p.get("snippet_type"),
            "content": None,
            "uploaded": False,
            "completed": False,
            "channels": [],
            "thread_ts": None,
            "initial_comment": None,
            "user": ident.user_id,
            "created": int(time.time()),
        }
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _file_obj(self, rec: dict[str, Any]) -> dict[str, Any]:
        content = rec["content"] or b""
        shares: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for cid, ts in rec.get("shares", []):
            ch = self._channels.get(cid, {})
            kind = "private" if ch.get("is_private") or ch.get("is_im") else "public"
            share: dict[str, Any] = {"ts": ts, "channel_name": ch.get("name", ""), "team_id": TEAM_ID}
            if rec.get("thread_ts"):
                share["thread_ts"] = rec["thread_ts"]
            shares.setdefault(kind, {}).setdefault(cid, []).append(share)
        return {
            "id": rec["id"],
            "created": rec["created"],
            "timestamp": rec["created"],
            "name": rec["name"],
            "title": rec["title"],
            "mimetype": "text/plain"
            if rec["name"].endswith((".txt", ".csv", ".md"))
            else "application/octet-stream",
            "filetype": rec["name"].rsplit(".", 1)[-1] if "." in rec["name"] else "binary",
            "user": rec["user"],
            "size": len(content),
            "is_external": False,
            "url_private": f"https://files.slack.com/files-pri/{TEAM_ID}-{rec['id']}/{rec['name']}",
            "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{rec['user']}/{rec['id']}/{rec['name']}",
            "channels": list(rec["channels"]),
            "shares": shares,
        }

    def _files_complete_upload_external(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        files = p.get("files")
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments")
        records = []
        for item in files:
            rec = self._files.get(str(item.get("id") if isinstance(item, dict) else item))
            if rec is None or not rec["uploaded"] or rec["completed"]:
                raise SlackError("file_not_found")
            records.append((rec, item))
        targets = [c.strip() for c in str(p.get("channels") or "").split(",") if c.strip()]
        if p.get("channel_id"):
            targets.insert(0, str(p["channel_id"]))
        chans = [self._postable(c, ident) for c in dict.fromkeys(targets)]
        thread_ts = _norm_ts(p.get("thread_ts"))
        for rec, item in records:
            if isinstance(item, dict) and item.get("title"):
                rec["title"] = item["title"]
            rec["completed"] = True
            rec["thread_ts"] = thread_ts
            rec["initial_comment"] = p.get("initial_comment")
            rec["channels"] = [c["id"] for c in chans]
            rec["shares"] = []
        for ch in chans:
            msg = self._bot_message({"text": p.get("initial_comment") or ""}, ident, self._new_ts())
            msg["upload"] = True
            msg["display_as_bot"] = False
            self._attach_thread(ch["id"], msg, thread_ts)
            for rec, _item in records:
                rec["shares"].append((ch["id"], msg["ts"]))
            msg["files"] = [
                {"id": rec["id"], "name": rec["name"], "title": rec["title"]} for rec, _item in records
            ]
            msg["channel"] = ch["id"]
            msg["reactions"] = {}
            self._hist(ch["id"]).insert(msg)
        return {"files": [self._file_obj(rec) for rec, _item in records]}

    def _apps_connections_open(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        if self.socket_mode_url:  # a test's own WebSocket server standing in for wss://wss.slack.com
            return {"url": f"{self.socket_mode_url}?ticket={uuid.uuid4()}&app_id={APP_ID}"}
        return {"url": f"ws://{self._host}:{self.port}/link/?ticket={uuid.uuid4()}&app_id={APP_ID}"}

    def _oauth_v2_access(self, p: dict[str, Any], ident: Identity) -> dict[str, Any]:
        auth = str(p.get("_authorization") or "")
        if not auth.lower().startswith("basic ") and not p.get("client_id"):
            raise SlackError("invalid_client_id")
        code = str(p.get("code") or "")
        if not code or code.startswith(("bad", "invalid", "expired")):
            raise SlackError("invalid_code")
        resp = json.loads(json.dumps(self.oauth_response))
        resp.pop("ok", None)
        token = resp.get("access_token")
        team = resp.get("team") or {}
        if token and token not in self._tokens:
            bot_user = resp.get("bot_user_id") or BOT_USER_ID
            self._tokens[token] = Identity(
                team_id=team.get("id", TEAM_ID),
                team_name=team.get("name", TEAM_NAME),
                user_id=bot_user,
                bot_id="B" + bot_user[1:],
                scopes=resp.get("scope", DEFAULT_SCOPES),
            )
        return resp

    # -- queries (test side) ------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, **params: Any) -> list[Call]:
        """Calls of ``method``, optionally only those whose params equal the given values."""
        with self._lock:
            found = list(self._calls_by_method.get(method, ()))
        if params:
            found = [c for c in found if all(c.params.get(k) == v for k, v in params.items())]
        return found

    def call_count(self, method: str) -> int:
        with self._lock:
            return len(self._calls_by_method.get(method, ()))

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()
            self._calls_by_method.clear()
            self._webhooks.clear()
            self.stats.clear()

    def dump_calls(self, last: int = 40) -> str:
        with self._lock:
            calls = self._calls[-last:]
            total = len(self._calls)
        lines = [f"{total} call(s) received" + (f", last {len(calls)}:" if total > len(calls) else ":")]
        lines += ["  " + c.summary(self._t0) for c in calls]
        return "\n".join(lines)

    def wait_for(
        self,
        method: str | None,
        count: int = 1,
        timeout: float = 5.0,
        predicate: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Block until ``count`` calls of ``method`` (None: any) matching ``predicate`` were received.

        Returns every matching call so far; raises AssertionError with a dump of calls on timeout.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                pool = self._calls if method is None else self._calls_by_method.get(method, [])
                if predicate is None:  # no scan per wake-up: a waiter must not slow the server down
                    found = pool
                    if len(pool) >= count:
                        return list(pool)
                else:
                    found = [c for c in pool if predicate(c)]
                    if len(found) >= count:
                        return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        raise AssertionError(
            f"wait_for({method!r}, count={count}{', predicate' if predicate else ''}) timed out after "
            f"{timeout}s: {len(found)} matching of {len(pool)} call(s) to {method or 'any method'}\n"
            + self.dump_calls()
            + (f"\nfake errors: {self.errors}" if self.errors else "")
        )

    def wait_until(self, condition: Callable[[], Any], timeout: float = 5.0, message: str = "") -> Any:
        """Poll ``condition()`` (re-checked on every call received) until truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"wait_until timed out after {timeout}s {message}\n" + self.dump_calls())
            with self._cond:
                self._cond.wait(min(remaining, 0.05))

    def wait_for_webhook(self, name: str | None = None, count: int = 1, timeout: float = 5.0) -> list[Any]:
        self.wait_until(
            lambda: len(self.webhook_posts(name)) >= count, timeout, f"for {count} webhook post(s) to {name}"
        )
        return self.webhook_posts(name)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Every stored (not deleted) message of a channel or user DM, replies included, oldest first."""
        with self._lock:
            cid = self._dm_by_user.get(channel, channel)
            hist = self._history.get(cid)
            if hist is None:
                return []
            msgs = sorted(hist.by_ts.values(), key=lambda m: _ts_us(m["ts"]))
            return [self._copy_msg(m) for m in msgs]

    @staticmethod
    def _copy_msg(msg: dict[str, Any]) -> dict[str, Any]:
        out = dict(msg)
        out["reactions"] = {k: list(v) for k, v in msg.get("reactions", {}).items()}
        return out

    def bot_messages(self, channel: str) -> list[dict[str, Any]]:
        return [m for m in self.messages(channel) if m.get("bot_id")]

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self._lock:
            hist = self._history.get(self._dm_by_user.get(channel, channel))
            msg = hist.by_ts.get(_norm_ts(ts) or "") if hist else None
            return self._copy_msg(msg) if msg else None

    def replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        with self._lock:
            hist = self._history.get(self._dm_by_user.get(channel, channel))
            return (
                [self._copy_msg(m) for m in hist.threads.get(_norm_ts(thread_ts) or "", [])] if hist else []
            )

    def permalink(self, channel: str, ts: str) -> str:
        return self._permalink(channel, _norm_ts(ts) or ts)

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(e)
                for e in self._ephemerals
                if (user is None or e["user"] == user) and (channel is None or e["channel"] == channel)
            ]

    def dm_channel(self, user: str) -> str | None:
        with self._lock:
            return self._dm_by_user.get(user)

    def dms(self, user: str) -> list[dict[str, Any]]:
        """Messages in the bot's DM with ``user``."""
        with self._lock:
            cid = self._dm_by_user.get(user)
        return self.messages(cid) if cid else []

    @property
    def views(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(v) for v in self._views]

    def home_view(self, user: str) -> dict[str, Any] | None:
        """The Home tab view currently published for ``user`` (as the API returned it)."""
        with self._lock:
            view_id = self._home_by_user.get(user)
            return dict(self._view_state[view_id]) if view_id else None

    def view(self, view_id: str) -> dict[str, Any] | None:
        with self._lock:
            obj = self._view_state.get(view_id)
            return dict(obj) if obj else None

    @property
    def files(self) -> list[dict[str, Any]]:
        """Uploaded files: id, name, title, length, content (bytes), channels, thread_ts, ..."""
        with self._lock:
            return [dict(f) for f in self._files.values()]

    @property
    def scheduled(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self._scheduled]

    @property
    def deleted(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(d) for d in self._deleted]

    def webhook_posts(self, name: str | None = None) -> list[Any]:
        """JSON bodies POSTed to response_url(name) (all names if None), in arrival order."""
        with self._lock:
            return [w.body for w in self._webhooks if name is None or w.name == name]

    @property
    def webhook_log(self) -> list[WebhookPost]:
        with self._lock:
            return list(self._webhooks)

    def channel(self, channel: str) -> dict[str, Any] | None:
        with self._lock:
            ch = self._channels.get(channel)
            if ch is None:
                return None
            out = dict(ch)
            out["members"] = set(ch["members"])
            return out

    def user(self, user: str) -> dict[str, Any] | None:
        with self._lock:
            u = self._users.get(user)
            return dict(u) if u else None


class _Disconnect(Exception):
    pass
