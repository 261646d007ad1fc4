"""What every listener needs: settings, the group-committed database writer, the workspace of a request."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from slack_bolt.request.internals import extract_enterprise_id, extract_is_enterprise_install, extract_team_id
from sqlalchemy.orm import Session

from bot.db import Database, PointReader
from bot.groupcommit import GroupCommitter
from bot.models import Job
from bot.services import channels as channel_svc
from bot.services import workspaces as ws_svc
from bot.services.common import job_row
from bot.settings import Settings

T = TypeVar("T")
UNKNOWN_TEAM = "T_UNKNOWN"  # only for org-level lifecycle events, which happen in no workspace


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
        the installation that authorised it (bot.services.workspaces), committed before any job the
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
