"""The delivery loop: fans announcements out to their channels, exactly once, at Slack's pace.

Each Delivery row is an outbox entry. A few sender threads (so Web API latency doesn't cap the
throughput) each claim one due row at a time with a lease (`locked_until`; PostgreSQL also skips rows
another replica holds with `FOR UPDATE SKIP LOCKED`), wait for a slot from the workspace's token
bucket (shared by the threads of the process) and for the channel's own ~1/s, call Slack, and record
the outcome on the row. Rows are claimed in three shapes:

* `pending` → post it (the row goes to `sending` in the claim's transaction);
* `sending` whose lease expired → the process died (or the call timed out) after the claim, so the
  message may or may not exist: look for it in conversations.history by its metadata and adopt its
  `ts`; post only if it is not there;
* `sent` with an older version than the announcement (edited) or a retracted announcement →
  chat.update the copy.

Nothing here sleeps while holding a lease for long: a 429 puts the row back with `next_attempt_at`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from sqlalchemy import and_, exists, func, or_, select, update

from bot.core import clock
from bot.core.common import enqueue
from bot.core.db import Database
from bot.core.models import Announcement, Delivery
from bot.core.slack_client import make_web_client
from bot.features import AnnouncementSent, Running
from bot.features.announcements import render
from bot.features.announcements import service as an_svc
from bot.features.announcements.budget import Budget, budget_for
from bot.features.subscriptions import service as sub_svc
from bot.queue import lease
from bot.queue.core import RETRY, PermanentError, TransientError, backoff, classify
from bot.queue.postonce import find_message

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

LIVE = ("scheduled", "sending")
# Errors that mean the channel can't take posts any more: its subscriptions go inactive.
CHANNEL_GONE = frozenset({"channel_not_found", "is_archived", "not_in_channel"})
# Errors on chat.update that mean there is no copy to change any more (deleted by a person, say).
COPY_GONE = frozenset({"message_not_found", "cant_update_message", "channel_not_found", "is_inactive",
                       "is_archived", "edit_window_closed"})


class _ChannelTaken(Exception):
    pass


@dataclass
class Claimed:
    delivery_id: int
    announcement_id: int
    team_id: str
    channel: str
    action: str  # post | reconcile | update | retract | drop
    attempts: int
    ts: str | None
    version: int
    status: str  # the announcement's
    send_at: datetime
    created_at: datetime
    view: render.AnnouncementView
    claimed: float  # monotonic
    reserved: bool = False  # a posting slot was reserved for it (the channel's pacing is set)


class DeliveryLoop:
    SENDERS = 4
    # The lease outlives any claim-to-record window: posting starts within LEASE/2 of the claim (else the
    # row is given back) and a call times out after CALL_TIMEOUT. After a kill -9 the dead process's few
    # claimed rows wait out their lease, so it is kept short.
    LEASE = timedelta(seconds=30)
    CALL_TIMEOUT = 10
    IDLE = 1.0
    SWEEP_EVERY = 10.0
    HISTORY_MARGIN = timedelta(seconds=60)

    def __init__(self, db: Database, slack: Any, settings: Any, *, wake_jobs: Callable[[], None] | None = None,
                 senders: int | None = None, on_sent: Sequence[AnnouncementSent] = ()):
        """`on_sent`: called in the transaction that marks an announcement sent (bot/composition.py wires
        decisions' shipped notice here)."""
        self.db = db
        self.on_sent = tuple(on_sent)
        self.slack = slack
        self.settings = settings
        self.wake_jobs = wake_jobs or (lambda: None)
        self.senders = senders or self.SENDERS
        # Per-workspace and per-channel pacing: in memory on SQLite, in the database on PostgreSQL
        # (shared by every replica; bot/features/announcements/budget.py).
        self.budget: Budget = budget_for(db, settings, hold_seconds=self.LEASE.total_seconds())
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_sweep = 0.0
        self.stats: dict[str, int] = {"posted": 0, "adopted": 0, "updated": 0, "retracted": 0, "failed": 0,
                                      "429": 0, "transient": 0}

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Callable[[], None]:
        for i in range(self.senders):
            t = threading.Thread(target=self.run_forever, name=f"loopline-delivery-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self.stop

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=timeout)

    def wake(self) -> None:
        self._wake.set()

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("delivery pass failed")
                busy = False
            if not busy:
                self._wake.wait(timeout=self.IDLE)
                self._wake.clear()

    def run_once(self) -> bool:
        """Claim and process one row; False when nothing was due."""
        c = self.claim()
        if c is None:
            if time.monotonic() - self._last_sweep > self.SWEEP_EVERY:
                self._last_sweep = time.monotonic()
                self.sweep()
            return False
        try:
            self.process(c)
        except Exception:
            log.exception("delivery %s crashed; retrying later", c.delivery_id)
            self._retry(c, backoff(c.attempts), "crash", known_unposted=False)
        return True

    def drain(self, timeout: float = 30.0) -> None:
        """Process until nothing is due (tests, CLI)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.run_once():
            pass
        self.sweep()

    # --- pacing ----------------------------------------------------------------------------------------

    def _client(self, team_id: str) -> Any:
        token = self.slack.token_for(team_id)
        with self._lock:
            client = self._clients.get(token)
            if client is None:
                # No built-in retry handlers: 429s and 5xx come back to us, so no sender sleeps on a lease.
                client = self._clients[token] = make_web_client(self.settings, token, retries=False,
                                                                 timeout=self.CALL_TIMEOUT,
                                                                 metrics=getattr(self.slack, "metrics", None))
            return client

    def _wait_for_slot(self, c: Claimed) -> bool:
        c.reserved = True
        return self.budget.wait_for_slot(c.team_id, c.channel, self._stop)

    # --- claiming --------------------------------------------------------------------------------------

    def claim(self) -> Claimed | None:
        try:
            return self._claim()
        except _ChannelTaken:
            self._wake.set()
            return None

    def _claim(self) -> Claimed | None:
        now = clock.now()
        D, A = Delivery, Announcement
        pace = self.budget.claim_filter(D.team_id, D.channel)
        needs_work = or_(
            D.status.in_(("pending", "sending")),
            and_(D.status == "sent", or_(A.version > D.version_sent, A.status == "retracted")),
        )
        q = (select(D).join(A, A.id == D.announcement_id)
             .where(D.next_attempt_at <= now, lease.free(D, now), needs_work)
             .order_by(D.next_attempt_at, D.id).limit(1))
        if pace is not None:
            q = q.where(pace)
        if lease.none_due(self.db, q):
            return None
        with self.db.session() as s:
            d = s.scalars(lease.due(s, q, of=D)).first()
            if d is None:
                return None
            if not self.budget.hold(s, d.team_id, d.channel):
                # Another process claimed a post for this channel a moment ago: give this row back (the
                # rollback) and look again at once.
                raise _ChannelTaken
            # Columns only: the relationship would load every delivery of a 1,000-channel announcement.
            a = s.execute(select(A.id, A.title, A.body, A.areas, A.author, A.version, A.status, A.send_at,
                                 A.retracted_by, A.created_at).where(A.id == d.announcement_id)).one()
            if d.status == "pending":
                action = "post" if a.status in LIVE else "drop"
            elif d.status == "sending":
                action = "reconcile"
            else:
                action = "retract" if a.status == "retracted" else "update"
            values: dict[str, Any] = {}
            if action in ("post", "reconcile"):
                values["attempts"] = D.attempts + 1
            if d.status == "pending" and action == "post":
                values["status"] = "sending"
            if not lease.take(s, D, [d.id], now=now, until=now + self.LEASE, **values):
                raise _ChannelTaken  # another sender took the row between our read and our write: roll back, look again
            view = render.AnnouncementView(id=a.id, title=a.title, body=a.body, areas=list(a.areas or []),
                                           author=a.author, version=a.version, status=a.status, send_at=a.send_at,
                                           retracted_by=a.retracted_by)
            claimed = Claimed(d.id, a.id, d.team_id, d.channel, action, d.attempts + 1, d.ts, a.version,
                              a.status, a.send_at, a.created_at, view, time.monotonic())
        if claimed.status == "scheduled" and action in ("post", "reconcile"):
            with self.db.session() as s:  # its own transaction: claims never hold the announcement's lock
                s.execute(update(A).where(A.id == claimed.announcement_id, A.status == "scheduled")
                          .values(status="sending"))
        return claimed

    # --- processing ------------------------------------------------------------------------------------

    def process(self, c: Claimed) -> None:
        try:
            self._process(c)
        finally:
            if not c.reserved:  # the claim held the channel and nothing was posted: give it back
                self.budget.unhold(c.team_id, c.channel)

    def _process(self, c: Claimed) -> None:
        if c.action == "drop":
            self._set(c, status="cancelled")
            self._finish(c.announcement_id)
            return
        try:
            client = self._client(c.team_id)
            if c.action == "reconcile":
                ts = self.find_copy(client, c)
                if ts:
                    self._record_sent(c, ts, adopted=True)
                    return
                if c.status not in LIVE:
                    self._set(c, status="cancelled")
                    self._finish(c.announcement_id)
                    return
                c.action = "post"
            if not self._wait_for_slot(c):
                self._release(c)
                return
            if time.monotonic() - c.claimed > self.LEASE.total_seconds() / 2:
                # Too close to the lease's end: another sender could take the row while we post.
                self._release(c)
                return
            if c.action == "post":
                text, blocks, meta = render.announcement_message(c.view, delivery_id=c.delivery_id)
                resp = client.chat_postMessage(channel=c.channel, text=text, blocks=blocks, metadata=meta,
                                               unfurl_links=False, unfurl_media=False)
                self._record_sent(c, str(resp["ts"]))
            elif c.action == "update":
                text, blocks, meta = render.announcement_message(c.view, delivery_id=c.delivery_id)
                client.chat_update(channel=c.channel, ts=c.ts, text=text, blocks=blocks, metadata=meta)
                self._set(c, version_sent=c.version, error=None)
                self.stats["updated"] += 1
            elif c.action == "retract":
                text, blocks, meta = render.retracted_message(c.view, delivery_id=c.delivery_id)
                client.chat_update(channel=c.channel, ts=c.ts, text=text, blocks=blocks, metadata=meta)
                self._set(c, status="retracted", error=None)
                self.stats["retracted"] += 1
        except Exception as raw:
            self._failed_call(c, raw)

    def _failed_call(self, c: Claimed, raw: Exception) -> None:
        e = classify(raw)
        if isinstance(e, TransientError) and e.retry_after is not None:
            # 429: certainly not posted; come back after Retry-After and slow the whole workspace a little.
            self.stats["429"] += 1
            self.budget.penalise(c.team_id, c.channel, e.retry_after)
            self._retry(c, e.retry_after, str(e), known_unposted=True, count=False)
        elif isinstance(e, TransientError) and (delay := RETRY.delay(
                e, attempt=c.attempts, since=max(c.send_at, c.created_at))) is not None:
            # 5xx, timeout, dropped connection: the post may have landed, so the row stays "sending"
            # and the next claim looks for the copy before posting again.
            self.stats["transient"] += 1
            log.warning("delivery %s to %s: %s, retrying", c.delivery_id, c.channel, e)
            self._retry(c, delay, str(e), known_unposted=False)
        else:
            code = str(e)[:200] if isinstance(e, PermanentError | TransientError) else f"error: {e!r}"[:200]
            log.warning("delivery %s to %s failed: %s", c.delivery_id, c.channel, code)
            if c.action == "post":
                self.stats["failed"] += 1
                with self.db.session() as s:
                    s.execute(update(Delivery).where(Delivery.id == c.delivery_id).values(
                        status="failed", error=code, locked_until=None))
                    if code in CHANNEL_GONE:
                        sub_svc.deactivate_channel(s, c.team_id, c.channel, code)
                self._finish(c.announcement_id)
            elif c.action == "retract":
                self._set(c, status="retracted", error=code)
            else:  # an edit that can't reach this copy: give up on it, keep the reason
                self._set(c, version_sent=c.version, error=code)

    # --- exactly once after a crash ------------------------------------------------------------------

    def find_copy(self, client: WebClient, c: Claimed) -> str | None:
        """The ts of this delivery's message if a previous attempt posted it, else None (also when the
        channel can't be read: posting is then the only way not to lose the announcement)."""
        return find_message(client, channel=c.channel, oldest=max(c.send_at, c.created_at),
                            margin=self.HISTORY_MARGIN, match=lambda m: render.is_copy_of(m, c.delivery_id),
                            what=f"delivery {c.delivery_id}")

    # --- recording -------------------------------------------------------------------------------------

    def _record_sent(self, c: Claimed, ts: str, *, adopted: bool = False) -> None:
        now = clock.now()
        late = now - c.send_at > an_svc.LATE_AFTER
        with self.db.session() as s:
            s.execute(update(Delivery).where(Delivery.id == c.delivery_id, Delivery.status == "sending").values(
                status="sent", ts=ts, sent_at=now, version_sent=c.version, late=late, locked_until=None,
                error=None, next_attempt_at=now))
            if late:
                s.execute(update(Announcement).where(Announcement.id == c.announcement_id).values(late=True))
        self.stats["adopted" if adopted else "posted"] += 1
        self._finish(c.announcement_id)

    def _set(self, c: Claimed, **values: Any) -> None:
        with self.db.session() as s:
            s.execute(update(Delivery).where(Delivery.id == c.delivery_id).values(locked_until=None, **values))

    def _release(self, c: Claimed) -> None:
        """Give a claimed row back untouched (shutting down, or too late in the lease)."""
        values: dict[str, Any] = {"locked_until": None}
        if c.action == "post":  # not posted (a reconciled row only gets here when no copy was found)
            values.update(status="pending", attempts=Delivery.attempts - 1)
        with self.db.session() as s:
            s.execute(update(Delivery).where(Delivery.id == c.delivery_id).values(**values))

    def _retry(self, c: Claimed, delay: float, error: str, *, known_unposted: bool, count: bool = True) -> None:
        values: dict[str, Any] = {"locked_until": None, "next_attempt_at": clock.now() + timedelta(seconds=delay),
                                  "error": error[:255]}
        if not count:
            values["attempts"] = Delivery.attempts - 1
        if c.action == "post" and known_unposted:
            values["status"] = "pending"
        with self.db.session() as s:
            s.execute(update(Delivery).where(Delivery.id == c.delivery_id,
                                             Delivery.status.in_(("sending", "sent"))).values(**values))

    def _finish(self, announcement_id: int) -> None:
        """Mark the announcement sent once no copy is open; tell the author once, with the failures."""
        with self.db.session() as s:
            still_open = exists(select(Delivery.id).where(Delivery.announcement_id == announcement_id,
                                                          Delivery.status.in_(an_svc.OPEN_DELIVERY)))
            r = s.execute(update(Announcement).where(Announcement.id == announcement_id,
                                                     Announcement.status.in_(LIVE), ~still_open)
                          .values(status="sent"))
            if not r.rowcount:  # type: ignore[attr-defined]
                return
            ann = s.get(Announcement, announcement_id)
            if ann is None:
                return
            for fn in self.on_sent:
                fn(s, ann)
            sent = sum(1 for d in ann.deliveries if d.status == "sent")
            failures = [(d.channel, d.error or "unknown") for d in ann.deliveries if d.status == "failed"]
            text, blocks = render.summary(render.view_of(ann), sent=sent, failures=failures, late=ann.late)
            enqueue(s, key=f"an-summary:{ann.id}", kind="notify.dm", team_id=ann.team_id,
                    payload={"user": ann.author, "text": text, "blocks": blocks})
        self.wake_jobs()

    def sweep(self) -> None:
        """Finish announcements whose last copy was recorded by a process that died before finishing."""
        with self.db.read_session() as s:
            open_ids = select(Delivery.announcement_id).where(Delivery.status.in_(an_svc.OPEN_DELIVERY))
            ids = list(s.scalars(select(Announcement.id).where(Announcement.status.in_(LIVE),
                                                                Announcement.id.not_in(open_ids))))
        for aid in ids:
            self._finish(aid)
        self.budget.tidy()

    def backlog(self) -> int:
        with self.db.read_session() as s:
            return int(s.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.status.in_(an_svc.OPEN_DELIVERY))) or 0)


def start(rt: Runtime, *, on_sent: Sequence[AnnouncementSent] = ()) -> Running:
    loop = DeliveryLoop(rt.db, rt.slack, rt.settings, wake_jobs=rt.worker.wake, on_sent=on_sent)
    loop.stats = rt.metrics.count_deliveries(loop.stats)  # each outcome also counted in /metrics
    rt.delivery = loop  # type: ignore[attr-defined]
    stop = loop.start()
    # The job worker runs a pass after every edge commit and once a second: it nudges us too (wake), so a
    # "send now" announcement goes out within a few milliseconds of the modal's submit.
    return Running(stop=stop, wake=loop.wake)
