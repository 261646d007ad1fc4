"""Digests in the background: planning runs, posting them into a thread, the chart, embeddings.

Exactly once per (team, channel, period): the planner only inserts runs (insert-ignore on the unique
key), and a run is posted by whoever claims it with a conditional UPDATE that takes a lease. The
parent's ts is recorded right after chat.postMessage and every reply's ts after its own, so a poster
that dies mid-way is replaced by one that continues the thread instead of starting a second one.
The digest's data is stored on the run before anything is posted, so a resumed run posts the same
replies even if feedback arrived in between.

Posting runs in its own thread (a background loop, bot/features/__init__.py): building a 100k-item digest takes seconds and
must never hold up the inbox worker that answers people.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.common import enqueue, queue_private
from bot.core.db import Database
from bot.core.models import DigestRun, DigestSchedule, Feedback
from bot.core.settings import Settings
from bot.features import HomeData, Running
from bot.features.digests import render
from bot.features.digests import schedules as sched_svc
from bot.features.digests.data import CHART_THEMES, DigestData
from bot.features.digests.service import build_digest, namer_for
from bot.features.workspaces.audience import channel_shared, is_shared
from bot.metrics import Metrics
from bot.queue import lease
from bot.queue.core import (
    RETRY,
    JobContext,
    Jobs,
    PermanentError,
    TransientError,
    backoff,
    classify,
    slack_error,
)
from bot.queue.postonce import find_all, mark_attempt, post_once
from bot.slack.render.connect import DIGEST_REFUSAL, SCHEDULE_STOPPED
from bot.slack.render.replies import ephemeral
from bot.slack.render.text import channel_link, escape
from bot.themes import Embedder, is_storable, pack_vector
from bot.themes.configured import cached_embedder

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)
jobs = Jobs()  # this module's job handlers and event routes, collected by bot/composition.py

LEASE = timedelta(minutes=5)
POLL_SECONDS = 1.0
FILE_PREFIX = "file:"
_ACTIVE = ("pending", "posting")


# --- claiming -------------------------------------------------------------------------------------


def claim_run(db: Database, *, now: datetime | None = None, run_id: int | None = None) -> int | None:
    """Take the lease on one due run (or on `run_id`); None if there is none or another poster has it."""
    now = now or clock.now()
    active = (DigestRun.status.in_(_ACTIVE),)
    q = select(DigestRun.id).where(*active, lease.free(DigestRun, now)).order_by(DigestRun.id).limit(1)
    if run_id is not None:
        q = q.where(DigestRun.id == run_id)
    if lease.none_due(db, q):
        return None
    with db.session() as s:
        rid = s.scalar(lease.due(s, q, of=DigestRun))
        if rid is None:
            return None
        taken = lease.take(s, DigestRun, [rid], now=now, until=now + LEASE, where=active, status="posting",
                           attempts=DigestRun.attempts + 1)
        return rid if taken else None


def _save(db: Database, run_id: int, **values: Any) -> None:
    with db.session() as s:
        s.execute(update(DigestRun).where(DigestRun.id == run_id).values(**values))


# --- building and posting -------------------------------------------------------------------------


def build_for_run(db: Database, settings: Settings, run: DigestRun, *, llm: bool = True,
                  progress: Callable[[str], None] | None = None) -> DigestData:
    with db.read_session() as s:
        sched = s.get(DigestSchedule, run.schedule_id) if run.schedule_id else None
        tz = sched.timezone if sched else settings.loopline_timezone
        label = sched_svc.manual_period(now=run.period_end, tz_name=tz, since=run.period_start).label
        namer = namer_for(settings) if llm else None
        try:
            return build_digest(s, team_id=run.team_id, channel=run.channel, period_key=run.period_key,
                                start=run.period_start, end=run.period_end, label=label,
                                areas=list(sched.areas) if sched and sched.areas else None,
                                embedder=cached_embedder(settings), namer=namer,
                                stale_days=settings.loopline_stale_days, progress=progress)
        finally:
            if namer is not None:
                namer.close()


PARENT_KEY, REPLY_KEY = "loopline_digest", "loopline_digest_reply"


def _post(client: WebClient, channel: str, msg: dict[str, Any], *, key_type: str, key: str,
          started: datetime | None = None, thread_ts: str | None = None) -> str:
    return post_once(client, channel=channel, key_type=key_type, key=key, started=started, thread_ts=thread_ts,
                     text=msg["text"], blocks=msg["blocks"], unfurl_links=False, unfurl_media=False).ts


def post_run(db: Database, settings: Settings, client: WebClient, run_id: int, *,
             progress: Callable[[str], None] | None = None, metrics: Metrics | None = None) -> DigestRun:
    """Post (or continue posting) one claimed run. Raises Slack errors for the caller to classify.

    Every message carries metadata naming (run, index), so a run resumed after a crash or a 5xx whose
    outcome is unknown adopts what an earlier attempt posted instead of posting it again.
    `progress` is told each step (`loopline digest` shows them on a terminal)."""
    step = progress or (lambda _: None)
    with db.read_session() as s:
        run = s.get(DigestRun, run_id)
        assert run is not None
        s.expunge(run)
    if run.summary is None:
        started_build = time.perf_counter()
        data = build_for_run(db, settings, run, progress=progress)
        if metrics is not None:
            metrics.observe_digest(time.perf_counter() - started_build, len(data.themes))
        run.summary = data.to_dict()
        _save(db, run_id, summary=run.summary, locked_until=clock.now() + LEASE)
    else:
        data = DigestData.from_dict(run.summary)
    messages = render.render_digest(data)
    step(f"posting {len(messages)} messages")
    # Only when an earlier attempt started posting can something have landed unrecorded.
    resumed = run.post_started_at is not None or run.ts is not None
    if run.ts is None:
        started = mark_attempt(db, DigestRun, run_id)
        key = f"{run_id}:0"
        try:
            run.ts = _post(client, run.channel, messages[0], key_type=PARENT_KEY, key=key, started=started)
        except SlackApiError as e:
            if slack_error(e) != "not_in_channel":
                raise
            client.conversations_join(channel=run.channel)  # public channels: join and try once more
            run.ts = _post(client, run.channel, messages[0], key_type=PARENT_KEY, key=key)
        _save(db, run_id, ts=run.ts)
    done = list(run.reply_ts or [])
    n_replies = sum(1 for x in done if not str(x).startswith(FILE_PREFIX))
    landed: dict[str, str] = {}
    if resumed and len(messages) > 1 + n_replies:
        # An earlier attempt may have posted the reply in flight (or more) without recording it.
        _, landed = find_all(client, channel=run.channel, key_type=REPLY_KEY, thread_ts=run.ts,
                             oldest=run.post_started_at or run.created_at)
    for i, msg in enumerate(messages[1 + n_replies:], start=1 + n_replies):
        key = f"{run_id}:{i}"
        done.append(landed.get(key) or _post(client, run.channel, msg, key_type=REPLY_KEY, key=key,
                                             thread_ts=run.ts))
        # Recorded one by one, with the lease renewed: a resumed run only has to look for the one in flight.
        _save(db, run_id, reply_ts=list(done), locked_until=clock.now() + LEASE)
    if data.themes and not any(str(x).startswith(FILE_PREFIX) for x in done):
        step("uploading the chart")
        done.append(FILE_PREFIX + upload_chart(client, run.channel, run.ts, data))
        _save(db, run_id, reply_ts=list(done))
    _save(db, run_id, status="posted", posted_at=clock.now(), locked_until=None, error=None)
    run.reply_ts, run.status = done, "posted"
    return run


def upload_chart(client: WebClient, channel: str, thread_ts: str, data: DigestData) -> str:
    """The 8-period chart into the thread; a chart that can't be uploaded is noted, not retried forever."""
    from bot.features.digests.charts import theme_volume_png  # lazy: matplotlib costs ~0.5 s to import

    series = [(t.title, t.weekly) for t in data.themes[:CHART_THEMES] if t.weekly]
    png = theme_volume_png(data.chart_labels, series, title=f"Weekly volume of the top themes · {data.period_label}")
    try:
        resp = client.files_upload_v2(channel=channel, thread_ts=thread_ts, content=png, filename="digest-themes.png",
                                      title="Top themes, last 8 periods")
    except SlackApiError as e:
        if isinstance(classify(e), PermanentError):
            log.warning("digest chart not uploaded: %s", slack_error(e))
            return "error:" + slack_error(e)
        raise
    f = resp.get("file") or (resp.get("files") or [{}])[0]
    return str(f.get("id") or "uploaded")


def run_due(db: Database, settings: Settings, client_for: Callable[[str], WebClient], *, limit: int = 10,
            metrics: Metrics | None = None) -> int:
    """Claim and post due runs; returns how many were handled."""
    handled = 0
    for _ in range(limit):
        rid = claim_run(db)
        if rid is None:
            break
        handled += 1
        process_claimed(db, settings, client_for, rid, metrics=metrics)
    return handled


def refuse_shared(db: Database, rid: int) -> None:
    """A digest summarises the whole workspace's feedback: never into a channel shared with another
    organisation. The run is recorded as refused, whoever asked is told privately, and a schedule there
    is stopped (its owner told once), since every later period would be refused the same way."""
    with db.session() as s:
        run = s.get(DigestRun, rid)
        assert run is not None
        run.status, run.error, run.locked_until = "refused", "channel shared with another organisation", None
        if run.requested_by:
            queue_private(s, key=f"digest-refused:{rid}", team_id=run.team_id, channel=run.channel,
                          user=run.requested_by, text=DIGEST_REFUSAL)
        sched = s.get(DigestSchedule, run.schedule_id) if run.schedule_id else None
        if sched is not None and sched.active:
            sched.active = False
            if sched.created_by:
                text = SCHEDULE_STOPPED.format(channel=channel_link(run.channel))
                enqueue(s, key=f"digest-stopped:{sched.id}:{run.id}", kind="notify.dm", team_id=run.team_id,
                        payload={"user": sched.created_by, "text": text, "blocks": ephemeral(text, text)["blocks"]})
    log.info("digest run %s refused: its channel is shared with another organisation", rid)


def process_claimed(db: Database, settings: Settings, client_for: Callable[[str], WebClient], rid: int, *,
                    progress: Callable[[str], None] | None = None, metrics: Metrics | None = None) -> None:
    with db.read_session() as s:
        run = s.get(DigestRun, rid)
        assert run is not None
        team, channel, attempts, requested_by = run.team_id, run.channel, run.attempts, run.requested_by
        created = run.created_at
    try:
        client = client_for(team)
        # Asked afresh at post time: a channel scheduled while internal may have been shared since.
        if is_shared(db, client, team, channel, fresh=True):
            refuse_shared(db, rid)
            return
        post_run(db, settings, client, rid, progress=progress, metrics=metrics)
        log.info("digest run %s posted in %s", rid, channel)
    except Exception as raw:
        e = classify(raw)
        delay = RETRY.delay(e, attempt=attempts, since=created) if isinstance(e, TransientError) else None
        if delay is not None:
            log.warning("digest run %s: transient %s, retry in %.1fs", rid, e, delay)
            _save(db, rid, locked_until=clock.now() + timedelta(seconds=delay), error=str(e)[:255])
            return
        if not isinstance(e, PermanentError | TransientError):
            log.exception("digest run %s crashed", rid)
            if attempts < 3:
                _save(db, rid, locked_until=clock.now() + timedelta(seconds=backoff(attempts)),
                      error=f"{type(e).__name__}: {e}"[:255])
                return
        _save(db, rid, status="failed", locked_until=None, error=str(e)[:255] or type(e).__name__)
        log.warning("digest run %s failed: %s", rid, e)
        if requested_by:
            # Slack's own error codes help the person (not_in_channel…); a crash's text would not.
            reason = str(e) if isinstance(e, PermanentError) else f"an internal error (reference run {rid})"
            with db.session() as s:
                text = f"The digest could not be posted in {channel_link(channel)}: `{escape(reason)}`."
                enqueue(s, key=f"digest-failed:{rid}", kind="notify.dm", team_id=team,
                        payload={"user": requested_by, "text": text, "blocks": ephemeral(text, text)["blocks"]})


def start_poster(rt: Runtime) -> Running:
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                n = run_due(rt.db, rt.settings, lambda team: rt.slack.for_team(team), metrics=rt.metrics)
            except Exception:
                log.exception("digest poster pass failed")
                n = 0
            if n == 0:
                stop.wait(POLL_SECONDS)

    thread = threading.Thread(target=loop, name="loopline-digests", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=15)

    return Running(stop=halt)



# --- planning -------------------------------------------------------------------------------------


def plan(rt: Runtime) -> None:
    with rt.db.session() as s:
        n = sched_svc.plan_runs(s, now=clock.now())
    if n:
        log.info("planned %d digest run(s)", n)


# --- embeddings, once per item after capture ------------------------------------------------------


def embed_pending(db: Database, embedder: Embedder, *, batch: int = 128, max_batches: int = 50) -> int:
    """Store vectors for active items without one. Corpus-fitted embedders (TF-IDF) are never stored:
    their vectors mean nothing outside the call that made them."""
    if not is_storable(embedder):
        return 0
    done = 0
    for _ in range(max_batches):
        with db.read_session() as s:
            rows = s.execute(select(Feedback.id, Feedback.text).where(
                Feedback.embedding.is_(None), Feedback.status == "active", Feedback.text_pending.is_(False))
                .order_by(Feedback.id).limit(batch)).all()
        if not rows:
            break
        vecs = embedder.embed([r.text or "" for r in rows])
        with db.session() as s:
            for r, v in zip(rows, vecs, strict=True):
                s.execute(update(Feedback).where(Feedback.id == r.id, Feedback.embedding.is_(None))
                          .values(embedding=pack_vector(v), embedding_model=embedder.name))
        done += len(rows)
    return done


def embed_pass(rt: Runtime) -> None:
    try:
        n = embed_pending(rt.db, cached_embedder(rt.settings))
    except Exception:  # the embeddings service being down must not break anything; the digest embeds on the fly
        log.exception("embedding pass failed")
        return
    if n:
        log.info("embedded %d feedback item(s)", n)


# --- /digest weekly|daily: resolve the person's time zone after the ack ---------------------------


@jobs.handler("digest.schedule")
def save_schedule_job(ctx: JobContext, p: dict[str, Any]) -> None:
    if channel_shared(ctx, p["channel"], fresh=True):
        with ctx.db.session() as s:
            enqueue(s, key=f"answer:{ctx.key}", kind="notify.respond", team_id=ctx.team_id,
                    payload={"response_url": p.get("response_url"), "user": p["user"], "text": DIGEST_REFUSAL})
        return
    tz = ctx.settings.loopline_timezone
    try:
        tz = (ctx.client().users_info(user=p["user"]).get("user") or {}).get("tz") or tz
    except SlackApiError as e:
        if isinstance(classify(e), TransientError):
            raise
        log.warning("users.info for %s failed (%s); using %s", p["user"], slack_error(e), tz)
    now = clock.now()
    with ctx.db.session() as s:
        sched = sched_svc.save_schedule(s, team_id=ctx.team_id or "", channel=p["channel"], cadence=p["cadence"],
                                        weekday=p.get("weekday"), at_time=p["at_time"], timezone=tz,
                                        areas=p.get("areas") or [], by=p["user"], now=now)
        text, blocks = schedule_answer(sched, now)
        enqueue(s, key=f"answer:{ctx.key}", kind="notify.respond", team_id=ctx.team_id,
                payload={"response_url": p.get("response_url"), "user": p["user"], "text": text, "blocks": blocks})


def schedule_answer(sched: DigestSchedule, now: datetime) -> tuple[str, list[dict[str, Any]]]:
    nxt = sched_svc.next_run(cadence=sched.cadence, weekday=sched.weekday, at_time=sched.at_time,
                             tz_name=sched.timezone, now=now).astimezone(sched_svc.zone(sched.timezone))
    text = (f"Digest scheduled in this channel {sched_svc.describe(sched)}. "
            f"Next one: {nxt.strftime('%a %-d %b %H:%M %Z')}.")
    return escape(text), ephemeral(text, ":calendar: " + escape(text))["blocks"]  # areas are the users' words


# --- App Home: the latest digest's themes ----------------------------------------------------------


def home_themes(session: Session, data: HomeData, team_id: str, user_id: str) -> None:
    summary = session.scalar(select(DigestRun.summary).where(
        DigestRun.team_id == team_id, DigestRun.status == "posted", DigestRun.summary.is_not(None))
        .order_by(DigestRun.posted_at.desc(), DigestRun.id.desc()).limit(1))
    if summary and not data.themes:
        data.themes = [(t["title"], t["count"]) for t in summary.get("themes", [])[:5]]
