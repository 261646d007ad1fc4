"""The records the fake keeps: who a token is, each call it answered, each fault it was told to
inject, each response_url POST it received."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .common import BOT_ID, BOT_USER_ID, DEFAULT_SCOPES, TEAM_DOMAIN, TEAM_ID, TEAM_NAME


@dataclass
class Identity:
    """The workspace and bot a token stands for (see FakeSlack.register_token)."""

    team_id: str = TEAM_ID
    team_name: str = TEAM_NAME
    user_id: str = BOT_USER_ID
    bot_id: str | None = BOT_ID
    scopes: str = DEFAULT_SCOPES
    domain: str = TEAM_DOMAIN
    enterprise_id: str | None = None  # an Enterprise Grid workspace's organisation


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
class WebhookPost:
    """One POST to a response_url (FakeSlack.response_url(name))."""

    name: str
    body: Any
    headers: dict[str, str]
    at: float


def _clip(text: Any, n: int = 60) -> str:
    s = str(text).replace("\n", "\\n")
    return s if len(s) <= n else s[: n - 1] + "…"
