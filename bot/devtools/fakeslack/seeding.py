"""Setting the scene from the test side: tokens, people, channels and messages as if they already
existed in Slack, and what people do in Slack without the bot (edit, delete, react, share, archive,
kick the bot)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .common import (
    BOT_ID,
    BOT_USER_ID,
    DEFAULT_SCOPES,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    fmt_ts,
    norm_ts,
    ts_us,
)
from .records import Identity
from .state import State

_MISSING = object()


def _tz_offset(tz: str) -> int:
    try:
        offset = datetime.now(ZoneInfo(tz)).utcoffset()
    except Exception:  # unknown zone or no tzdata: Slack would say UTC
        return 0
    return int(offset.total_seconds()) if offset is not None else 0


class Seeding(State):
    def _add_bot_user(self) -> None:
        self.add_user(
            BOT_USER_ID, name="loopline", real_name="Loopline", is_bot=True, tz="America/Los_Angeles"
        )
        self._users[BOT_USER_ID]["bot_id"] = BOT_ID

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
        """Bind a token to a workspace identity (auth.test, per-workspace rate limits). `scopes` (comma-separated)
        is what every answer to this token reports in X-OAuth-Scopes, as Slack does: register one with fewer
        scopes than the manifest asks for to stand for an app installed before a scope was added."""
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
            self._hist(channel_id)  # an empty history (a channel added again keeps its messages)
        return channel_id

    def _seed_channel(self, channel: str) -> dict[str, Any]:
        if channel[:1] in ("U", "W"):
            return self._dm(channel)
        if channel not in self._channels:
            raise KeyError(f"unknown channel {channel!r}: call add_channel() first")
        return self._channels[channel]

    def _seeded_message(self, channel: str, ts: str) -> dict[str, Any]:
        return self._hist(self._seed_channel(channel)["id"]).by_ts[norm_ts(ts) or ts]

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
        attachments: list[dict[str, Any]] | None = None,
    ) -> str:
        """Seed a message as if a person posted it; returns its ts."""
        with self._lock:
            ch = self._seed_channel(channel)
            if ts is None:
                ts = self._new_ts()
            else:
                ts = fmt_ts(ts_us(ts))
                self._last_ts_us = max(self._last_ts_us, ts_us(ts))
            msg: dict[str, Any] = {"type": "message", "ts": ts, "user": user, "text": text}
            if subtype:
                msg["subtype"] = subtype
            if bot_id:
                msg["bot_id"] = bot_id
            if blocks is not None:
                msg["blocks"] = blocks
            if files:
                msg["files"] = files
            if attachments:
                msg["attachments"] = attachments
            if metadata:
                msg["metadata"] = metadata
            msg["team"] = ch.get("team_id", TEAM_ID)
            if thread_ts is not None:
                self._attach_thread(ch["id"], msg, norm_ts(thread_ts))
            self._store(ch["id"], msg, reactions)
        return ts

    def edit_message(self, channel: str, ts: str, text: str, *, blocks: Any = _MISSING) -> None:
        """Edit a stored message in place (as if its author edited it)."""
        with self._lock:
            msg = self._seeded_message(channel, ts)
            msg["text"] = text
            if blocks is not _MISSING:
                msg["blocks"] = blocks
            msg["edited"] = {"user": msg.get("user"), "ts": self._new_ts()}

    def delete_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """Delete a stored message (as if its author deleted it)."""
        with self._lock:
            cid = self._seed_channel(channel)["id"]
            msg = self._hist(cid).remove(norm_ts(ts) or ts)
            if msg is not None:
                self._deleted.append(dict(msg))
            return msg

    def add_reaction(self, channel: str, ts: str, name: str, user: str) -> None:
        with self._lock:
            users = self._seeded_message(channel, ts)["reactions"].setdefault(name.strip(":"), [])
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
