"""What every part of the fake shares: the default workspace, SlackError, and Slack's wire formats
(message timestamps, pagination cursors, boolean and integer parameters)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

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

Params = dict[str, Any]  # a Web API request's arguments, parsed (see api.parse_params)
Answer = dict[str, Any]  # what a handler returns; the fake adds "ok": true
# An HTTP answer: status, body (JSON-able, or text) and headers; None closes the connection unanswered.
Reply = tuple[int, Any, dict[str, str]] | None


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


def ts_us(ts: Any) -> int:
    """'1700000000.000123' -> microseconds since the epoch (ValueError if malformed)."""
    secs, _, frac = str(ts).strip().partition(".")
    if not secs.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"bad ts {ts!r}")
    return int(secs) * 1_000_000 + int((frac + "000000")[:6])


def fmt_ts(us: int) -> str:
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def norm_ts(ts: Any) -> str | None:
    """A ts in Slack's canonical six-digit form (None for none; left alone when malformed)."""
    if ts is None or ts == "":
        return None
    try:
        return fmt_ts(ts_us(ts))
    except ValueError:
        return str(ts)


def flag(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True", "TRUE")


def to_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def encode_cursor(kind: str, value: int) -> str:
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def decode_cursor(cursor: Any, kind: str) -> int | None:
    if not cursor:
        return None
    try:
        prefix, _, value = base64.b64decode(str(cursor), validate=True).decode().partition(":")
        if prefix != kind:
            raise ValueError(prefix)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise SlackError("invalid_cursor") from exc


def page(items: list[Any], p: Params, default_limit: int) -> tuple[list[Any], dict[str, Any]]:
    """One page of a cursor-paginated list (conversations.list, users.list, ...) and its metadata."""
    offset = decode_cursor(p.get("cursor"), "offset") or 0
    limit = max(1, min(to_int(p.get("limit"), default_limit) or default_limit, 1000))
    chunk = items[offset : offset + limit]
    more = offset + limit < len(items)
    return chunk, {"next_cursor": encode_cursor("offset", offset + limit) if more else ""}
