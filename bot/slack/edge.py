"""What every listener needs: settings, the group-committed database writer, the workspace of a request."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import aiohttp
from slack_bolt.request.internals import extract_enterprise_id, extract_is_enterprise_install, extract_team_id
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot.core import audience as rules
from bot.core import channels as channel_svc
from bot.core import clock
from bot.core import workspaces as ws_svc
from bot.core.common import ServiceError, job_row
from bot.core.db import Database, PointReader
from bot.core.groupcommit import GroupCommitter
from bot.core.models import Job
from bot.core.settings import Settings
from bot.slack.render.connect import NOT_KNOWN_YET, OUTSIDER_REFUSAL

T = TypeVar("T")
# Work right after the ack: fn(body, client, context, respond), scheduled by Edge.ack_then.
AfterAck = Callable[[dict[str, Any], Any, Any, Any], Awaitable[None]]
Listener = Callable[..., Awaitable[None]]
UNKNOWN_TEAM = "T_UNKNOWN"  # only for org-level lifecycle events, which happen in no workspace
BAD_VALUE = (ValueError, KeyError, TypeError)  # what a reader of a forged button value may raise


@dataclass(frozen=True)
class Click(Generic[T]):
    """A button press from someone known to be inside, its value read (Edge.click)."""

    team: str
    user: str
    action: dict[str, Any]
    value: T


@dataclass(frozen=True)
class Submission:
    """A modal submitted by someone known to be inside (Edge.form)."""

    team: str
    user: str
    meta: dict[str, Any]  # the view's private_metadata


@dataclass
class Edge:
    settings: Settings
    db: Database
    writer: GroupCommitter
    multi_workspace: bool = False  # OAuth installs: record which installation serves each workspace
    _tasks: set[Any] = field(default_factory=set)
    _known: set[tuple[str, str | None, bool]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._reader = PointReader(self.db.engine)
        self._inline = self.db.engine.dialect.name == "sqlite"
        self._readers = threading.local()

    async def workspace(self, body: dict[str, Any], context: Any) -> str:
        """team_of(body), once the worker can find the installation serving that workspace.

        Jobs, deliveries and digests are keyed by workspace; Bolt finds a bot by enterprise id, workspace
        and whether the install is org-wide. The first request a process sees for a workspace records
        the installation that authorised it (bot.core.workspaces), committed before any job the
        request queues; later requests cost a set lookup.
        """
        team = team_of(body)
        result = getattr(context, "authorize_result", None)
        if self.multi_workspace and result is not None and result.bot_token:
            # The stored installation's own ids: an org-wide one has no workspace of its own.
            key = (team, result.enterprise_id, result.team_id is None)
            if key not in self._known:
                await self.writer.run(lambda s: ws_svc.remember(s, team_id=team, enterprise_id=key[1],
                                                                is_enterprise_install=key[2]))
                self._known.add(key)
        return team

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

    def ack_then(self, work: AfterAck) -> Listener:
        """A listener that acks at once and then runs `work(body, client, context, respond)` after the ack
        (`after_ack`): for what needs the Web API right away, e.g. views.open with a 3-second trigger_id.
        The one way Loopline works after an ack besides the worker (no Bolt lazy listeners)."""

        async def listener(ack: Any, body: dict[str, Any], client: Any, context: Any, respond: Any) -> None:
            await ack()
            self.after_ack(work(body, client, context, respond))

        return listener

    async def submit(self, ack: Any, fn: Callable[[Session], object], *, errors_in: str,
                     limit: int | None = None) -> bool:
        """A modal's submission: write `fn` in one group-committed transaction and ack (the modal closes);
        when the rules refuse (ServiceError), ack with the reason under the block `errors_in` instead, so
        the person sees it on the form. True when written."""
        try:
            await self.write(fn)
        except ServiceError as e:
            await ack(response_action="errors", errors={errors_in: str(e)[:limit]})
            return False
        await ack()
        return True

    async def click(self, ack: Any, body: dict[str, Any], context: Any,
                    read: Callable[[str], T]) -> Click[T] | None:
        """The opening of a button that changes something: refuse anyone not known to be inside
        (`refuse_if_outside`), then read the button's value with `read` (a payload can be forged: what
        `read` raises on, ValueError, KeyError or TypeError, is ignored). None when the request has been
        acked and the listener has nothing more to do."""
        team = await self.workspace(body, context)
        if await self.refuse_if_outside(body, context):
            await ack()
            return None
        action = body["actions"][0]
        try:
            value = read(action.get("value") or "")
        except BAD_VALUE:
            await ack()
            return None
        return Click(team=team, user=user_of(body), action=action, value=value)

    async def form(self, ack: Any, body: dict[str, Any], view: dict[str, Any], context: Any, *,
                   errors_in: str) -> Submission | None:
        """The opening of a modal's submission: refuse anyone not known to be inside, the reason shown
        on the form under the block `errors_in` (None: acked, nothing more to do); else who submitted it,
        where, and the view's private_metadata."""
        team, user = await self.workspace(body, context), body["user"]["id"]
        if why := await self.refuse_if_outside(body, context):
            await ack(response_action="errors", errors={errors_in: why})
            return None
        return Submission(team=team, user=user, meta=json.loads(view.get("private_metadata") or "{}"))

    async def is_watched(self, team_id: str, channel: str) -> bool:
        """May this channel's messages be feedback? Dropping here is final (the event is acked), so the
        answer is read fresh for every candidate message: one indexed row, never a cache that misses a
        watch turned on a moment ago (on any replica) or a channel just unarchived. A database that
        can't answer keeps the message; the worker has the last word either way.

        On SQLite the read (~10 µs) runs inline; on PostgreSQL it is a network round trip, so it runs in
        a thread (one connection per thread) and the event loop acks other requests meanwhile."""
        values = {"team_id": team_id, "channel_id": channel}
        try:
            if self._inline:
                return bool(self._reader.scalar(channel_svc.WATCHED_FLAG, values))
            return bool(await asyncio.to_thread(self._thread_read, values))
        except Exception:
            logging.getLogger(__name__).warning("watch check failed; keeping the message", exc_info=True)
            return True

    def _thread_read(self, values: dict[str, Any]) -> Any:
        reader = getattr(self._readers, "reader", None)
        if reader is None:
            reader = self._readers.reader = PointReader(self.db.engine)
        return reader.scalar(channel_svc.WATCHED_FLAG, values)

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
    """The workspace a payload belongs to, under which Loopline keeps what it captures.

    A workspace install (single workspace, Enterprise Grid, Slack Connect): the installation's workspace,
    as Bolt resolves it (in a Connect channel `authorizations[0]` / `view.app_installed_team_id`, never
    the other organisation's team). An org-wide install has no workspace of its own
    (`authorizations[0].team_id` null, `view.app_installed_team_id` the enterprise id): the workspace the
    event happened in, read only from fields that belong to the installing organisation.
    """
    team = extract_team_id(body)
    if team and not extract_is_enterprise_install(body) and not str(team).startswith("E"):
        return str(team)
    return _where_it_happened(body, extract_enterprise_id(body)) or UNKNOWN_TEAM


def _where_it_happened(body: dict[str, Any], enterprise_id: str | None) -> str | None:
    def workspace_id(value: Any) -> str | None:
        return value if isinstance(value, str) and value and not value.startswith("E") else None

    # Envelopes name a (team, enterprise) pair twice; in a Connect channel one may be the other side's.
    for team, enterprise in ((body.get("context_team_id"), body.get("context_enterprise_id")),
                             (body.get("team_id"), body.get("enterprise_id"))):
        if workspace_id(team) and enterprise == enterprise_id:
            return str(team)
    event: dict[str, Any] = body["event"] if isinstance(body.get("event"), dict) else {}
    candidates = [] if body.get("is_ext_shared_channel") else [event.get("team"), event.get("user_team")]
    for part, key in (("view", "team_id"), ("team", "id"), ("user", "team_id")):
        if isinstance(body.get(part), dict):
            candidates.append(body[part].get(key))
    return next((str(c) for c in candidates if workspace_id(c)), None)
