"""What every listener needs: settings, the group-committed database writer, small caches."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from slack_bolt.request.internals import extract_team_id
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot import clock
from bot.db import Database
from bot.groupcommit import GroupCommitter
from bot.models import Job
from bot.services import audience as rules
from bot.services.channels import watched_channels
from bot.services.common import job_row
from bot.settings import Settings
from bot.slack.render.connect import NOT_KNOWN_YET, OUTSIDER_REFUSAL

T = TypeVar("T")


@dataclass
class Edge:
    settings: Settings
    db: Database
    writer: GroupCommitter
    _watched: set[tuple[str, str]] = field(default_factory=set)
    _tasks: set[Any] = field(default_factory=set)
    _watched_at: float = 0.0
    watched_ttl: float = 2.0

    async def write(self, fn: Callable[[Session], T]) -> T:
        """Run `fn` in a group-committed transaction; returns once it is durable."""
        return await self.writer.run(fn)

    async def enqueue(self, *, key: str, kind: str, team_id: str | None, payload: dict[str, Any]) -> None:
        """Durably queue a job for the worker (batched with other requests' rows)."""
        await self.writer.insert(Job, job_row(key=key, kind=kind, team_id=team_id, payload=payload), conflict=("key",))

    def after_ack(self, coro: Any) -> None:
        """Run a coroutine after this request's response (for views.open with a 3-second trigger_id).

        Bolt's lazy listeners do the same but deep-copy the request and dispatch it again through
        every middleware, which cost ~0.7 ms per /feedback; this is the plain asyncio equivalent.
        """
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)  # the loop keeps only weak references to tasks

        def done(t: Any) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logging.getLogger(__name__).error("after-ack task failed", exc_info=t.exception())

        task.add_done_callback(done)

    def is_watched(self, team_id: str, channel: str) -> bool:
        # Every message in every channel the bot is in arrives here; a short-lived cache keeps the
        # common case (not watched) free of database reads. Toggling watch refreshes it at once.
        now = time.monotonic()
        if now - self._watched_at > self.watched_ttl:
            with self.db.read_session() as s:
                self._watched = watched_channels(s)
            self._watched_at = now
        return (team_id, channel) in self._watched

    def invalidate_watched(self) -> None:
        self._watched_at = 0.0

    # --- Slack Connect: is the person acting outside the installing organisation? -------------------

    def outside(self, body: dict[str, Any], context: Any) -> bool | None:
        """True/False when the payload or the cache can tell; None when only Slack can (after the ack).

        Interactivity names the person's own workspace (`user.team_id`); a slash command's `team_id` is
        the workspace it was typed in, which Slack only allows for workspaces the app is installed in."""
        home = home_of(body, context)
        user = body.get("user")
        user_team = user.get("team_id") if isinstance(user, dict) else body.get("team_id")
        said = rules.outside_by_team(user_team, home)
        if said is not None:
            return said
        with self.db.read_session() as s:
            return rules.cached(s, team_id=home.team_id, kind=rules.USER, object_id=user_of(body),
                                now=clock.now())

    async def turned_away_after_ack(self, body: dict[str, Any], context: Any, client: Any, respond: Any) -> bool:
        """For buttons that open a form, right after the ack (a Web API call is allowed there): unless the
        person is inside, tell them privately and return True. Asks users.info when the payload and the
        cache can't tell, and remembers the answer; when Slack can't answer either, turns them away."""
        outside = self.outside(body, context)
        if outside is None:
            home, user = home_of(body, context), user_of(body)
            try:
                info = (await client.users_info(user=user)).get("user") or {}
            except (SlackApiError, OSError, TimeoutError, aiohttp.ClientError) as e:
                logging.getLogger(__name__).info("users.info failed (%r): turned away for now", e)
            else:
                outside = rules.outside_by_user_info(info, home)
                await self.write(lambda s: rules.remember(s, team_id=home.team_id, kind=rules.USER, object_id=user,
                                                          external=bool(outside), now=clock.now()))
        if outside is False:
            return False
        await respond(response_type="ephemeral", replace_original=False,
                      text=OUTSIDER_REFUSAL if outside else NOT_KNOWN_YET)
        return True

    async def refuse_if_outside(self, body: dict[str, Any], context: Any) -> str | None:
        """At ack time, before anything is changed: the reason to refuse (and, for a button, a private
        answer queued), or None when the person is known to be inside. Someone not known yet (another
        workspace of a Grid organisation) is refused this once and looked up, so trying again works.
        Forms (no response_url) show the reason in the form: the caller acks with it."""
        outside = self.outside(body, context)
        if outside is False:
            return None
        why = OUTSIDER_REFUSAL if outside else NOT_KNOWN_YET
        if outside is None:
            await self.check_later(body, context)
        if body.get("response_url"):
            action_ts = ((body.get("actions") or [{}])[0]).get("action_ts") or clock.now().timestamp()
            await self.enqueue(key=f"outsider:{user_of(body)}:{action_ts}", kind="notify.respond",
                               team_id=home_of(body, context).team_id,
                               payload={"response_url": body["response_url"], "user": user_of(body), "text": why})
        return why

    async def check_later(self, body: dict[str, Any], context: Any) -> None:
        """Queue a users.info lookup for someone `outside()` could not place, so a retry can be answered."""
        home, user = home_of(body, context), user_of(body)
        team = (body.get("user") or {}).get("team_id") if isinstance(body.get("user"), dict) else None
        await self.enqueue(key=f"audience:{home.team_id}:{user}:{clock.now():%Y%m%d%H%M}", kind="audience.check",
                           team_id=home.team_id, payload={"user": user, "user_team": team})

    def channel_known_shared(self, body: dict[str, Any], context: Any, channel: str) -> bool:
        """Whether the cache already knows `channel` is shared with another organisation (no Web API call)."""
        with self.db.read_session() as s:
            return bool(rules.cached(s, team_id=home_of(body, context).team_id, kind=rules.CHANNEL,
                                     object_id=channel, now=clock.now()))


def home_of(body: dict[str, Any], context: Any) -> rules.Home:
    """The installing organisation of this request: the installation Bolt authorised it with (never the
    payload's `team`, which in a Slack Connect channel may be the other organisation's)."""
    result = context.get("authorize_result") if context is not None else None
    team = getattr(result, "team_id", None) or team_of(body)
    return rules.Home(team_id=str(team), enterprise_id=getattr(result, "enterprise_id", None))


def user_of(body: dict[str, Any]) -> str:
    user = body.get("user")
    return str(user.get("id") if isinstance(user, dict) else body.get("user_id") or "")


def team_of(body: dict[str, Any]) -> str:
    """The workspace a payload belongs to: the installation's, as Bolt resolves it (in a Slack Connect
    channel `authorizations[0]` / `view.app_installed_team_id`, not the other organisation's team)."""
    return str(extract_team_id(body) or "T_UNKNOWN")
