"""What a test asks the fake afterwards: the calls it received (and waiting for them), and what
Slack now holds — messages, replies, DMs, ephemeral messages, views, files, response_url POSTs.
Everything returned is a copy, taken under the lock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .common import norm_ts, ts_us
from .records import Call, WebhookPost
from .state import History, State


class Queries(State):
    # -- calls ------------------------------------------------------------------------------------

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

    # -- response_url POSTs -----------------------------------------------------------------------

    def webhook_posts(self, name: str | None = None) -> list[Any]:
        """JSON bodies POSTed to response_url(name) (all names if None), in arrival order."""
        with self._lock:
            return [w.body for w in self._webhooks if name is None or w.name == name]

    @property
    def webhook_log(self) -> list[WebhookPost]:
        with self._lock:
            return list(self._webhooks)

    def wait_for_webhook(self, name: str | None = None, count: int = 1, timeout: float = 5.0) -> list[Any]:
        self.wait_until(
            lambda: len(self.webhook_posts(name)) >= count, timeout, f"for {count} webhook post(s) to {name}"
        )
        return self.webhook_posts(name)

    # -- messages ---------------------------------------------------------------------------------

    def _history_of(self, channel: str) -> History | None:
        """A channel's history; a user id means the bot's DM with them."""
        return self._history.get(self._dm_by_user.get(channel, channel))

    @staticmethod
    def _copy_msg(msg: dict[str, Any]) -> dict[str, Any]:
        out = dict(msg)
        out["reactions"] = {k: list(v) for k, v in msg.get("reactions", {}).items()}
        return out

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Every stored (not deleted) message of a channel or user DM, replies included, oldest first."""
        with self._lock:
            hist = self._history_of(channel)
            if hist is None:
                return []
            msgs = sorted(hist.by_ts.values(), key=lambda m: ts_us(m["ts"]))
            return [self._copy_msg(m) for m in msgs]

    def bot_messages(self, channel: str) -> list[dict[str, Any]]:
        return [m for m in self.messages(channel) if m.get("bot_id")]

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self._lock:
            hist = self._history_of(channel)
            msg = hist.by_ts.get(norm_ts(ts) or "") if hist else None
            return self._copy_msg(msg) if msg else None

    def replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        with self._lock:
            hist = self._history_of(channel)
            return [self._copy_msg(m) for m in hist.threads.get(norm_ts(thread_ts) or "", [])] if hist else []

    def permalink(self, channel: str, ts: str) -> str:
        return self._permalink(channel, norm_ts(ts) or ts)

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
    def scheduled(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self._scheduled]

    @property
    def deleted(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(d) for d in self._deleted]

    # -- views, files, channels, people -------------------------------------------------------------

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
