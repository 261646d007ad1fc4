"""Feedback: capture, votes, withdrawal, edits, details, export and import. No Slack imports here."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.core import csvfile
from bot.core.channels import get_channel
from bot.core.common import ServiceError, _insert_stmt, insert_ignore, insert_ignore_many, normalise_area
from bot.core.db import is_postgres
from bot.core.groupcommit import Batched
from bot.core.ids import decision_ref, feedback_ref
from bot.core.models import Channel, DecisionFeedback, Feedback, FeedbackVote, Job, utcnow
from bot.features.feedback import merging

SOURCES = ("command", "shortcut", "reaction", "watch", "import", "modal")
KINDS = ("feedback", "idea", "bug", "question", "praise")
MAX_TEXT = 40_000  # Slack's own message ceiling; anything longer is not a message we were sent


def message_key(team_id: str, channel: str, ts: str) -> str:
    """Natural key of feedback that came from a Slack message: one item per message, however captured."""
    return f"msg:{team_id}:{channel}:{ts}"


def get_feedback(session: Session, feedback_id: int, *, team_id: str) -> Feedback | None:
    """FB-n as seen from workspace `team_id` (ids come from buttons and forms: never trust them alone)."""
    item = session.get(Feedback, feedback_id)
    return item if item is not None and item.team_id == team_id else None


def find_by_message(session: Session, *, team_id: str, channel: str, ts: str) -> Feedback | None:
    return session.scalar(select(Feedback).where(Feedback.source_key == message_key(team_id, channel, ts)))


def capture_feedback(
    session: Session,
    *,
    team_id: str,
    source: str,
    source_key: str,
    text: str,
    channel: str | None = None,
    ts: str | None = None,
    thread_ts: str | None = None,
    permalink: str | None = None,
    reporter: str | None = None,
    captured_by: str | None = None,
    kind: str | None = None,
    area: str | None = None,
    customer: str | None = None,
    arr: float | None = None,
    created_at: datetime | None = None,
    text_pending: bool = False,
    vote_via: str = "capture",
) -> tuple[Feedback, bool]:
    """Store feedback once per `source_key`. Returns (item, created).

    A second capture of the same message (a retry, a double click, a reaction after a shortcut) returns
    the existing item, counting the new person as a vote; a withdrawn item comes back to life.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    text = (text or "")[:MAX_TEXT]
    if not text.strip() and not text_pending:
        raise ServiceError("Feedback text is empty.")
    if channel and (customer is None or arr is None):
        mapped = get_channel(session, team_id=team_id, channel_id=channel)
        if mapped and mapped.customer:
            customer = customer or mapped.customer
            arr = arr if arr is not None else mapped.customer_arr
    now = created_at or utcnow()
    created = insert_ignore(
        session,
        Feedback,
        {
            "team_id": team_id, "source_key": source_key[:255], "text": text, "kind": (kind or "feedback"),
            "area": normalise_area(area) if area else None, "customer": customer, "arr": arr,
            "channel": channel, "ts": ts, "thread_ts": thread_ts, "permalink": permalink,
            "reporter": reporter, "captured_by": captured_by, "source": source, "status": "active",
            "text_pending": text_pending, "created_at": now, "updated_at": now,
        },
        conflict=["source_key"],
    )
    item = session.scalar(select(Feedback).where(Feedback.source_key == source_key[:255]))
    assert item is not None
    if not created and item.status == "withdrawn" and source == "reaction":
        item.status, item.withdrawn_reason = "active", None
        item.captured_by = captured_by or item.captured_by
    if not created and item.text_pending and text.strip():
        item.text, item.text_pending = text, False
    if captured_by:
        add_vote(session, feedback_id=item.id, user_id=captured_by, via=vote_via)
        session.refresh(item, ["votes"])
    return item, created


_VOTE_INSERT = insert(FeedbackVote)


@dataclass
class CommandText(Batched):
    """One `/feedback TEXT` for the group commit; many are captured with one statement on PostgreSQL
    (`_CAPTURE_PG`), three on SQLite."""

    team_id: str
    channel: str
    user: str
    text: str
    request_key: str
    # Whether a new item gets its duplicate check (a person of the organisation typed it), and where
    # the check may answer. The job row goes into the capture's own commit: the ack promises both.
    suggest: bool = False
    response_url: str | None = None
    # The duplicate check is found by the worker's next poll (<= 1 s): a commit of captures must not
    # start a claim transaction competing with the edge for the write lock (bot/core/groupcommit.py).
    wakes_worker = False
    # On PostgreSQL a batch is written by one statement, atomic on its own (`_capture_commands_pg`).
    one_statement_on_postgres = True

    @classmethod
    def run_batch(cls, session: Session, units: list[Any]) -> list[Any]:
        return capture_command_texts(session, units)


def capture_command_texts(session: Session, reqs: list[CommandText]) -> list[dict[str, Any]]:
    """The `/feedback TEXT` hot path, for a whole commit's worth of requests at once.

    Returns, per request, the new or existing item's fields (`id`, `text`, `customer`, `arr`,
    `votes`, `created`). Writes are INSERT … ON CONFLICT DO NOTHING, so a repeated request
    (same trigger_id) returns the item it made the first time.
    """
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for r in reqs:
        rows.append({"team_id": r.team_id, "source_key": f"cmd:{r.team_id}:{r.request_key}"[:255],
                     "text": (r.text or "").strip()[:MAX_TEXT], "kind": "feedback", "area": None, "customer": None,
                     "arr": None, "channel": r.channel, "ts": None, "thread_ts": None, "permalink": None,
                     "reporter": r.user, "captured_by": r.user, "source": "command", "status": "active",
                     "text_pending": False, "created_at": now, "updated_at": now})
    if is_postgres(session):
        new_ids = _capture_commands_pg(session, reqs, rows, now)
    else:
        new_ids = _capture_commands(session, reqs, rows, now)
    missing = [row["source_key"] for row in rows if row["source_key"] not in new_ids]
    existing = {f.source_key: f for f in session.scalars(select(Feedback).where(Feedback.source_key.in_(missing)))} \
        if missing else {}
    out: list[dict[str, Any]] = []
    claimed: set[str] = set()
    for row in rows:
        key = row["source_key"]
        if key in new_ids and key not in claimed:
            claimed.add(key)  # the same trigger twice in one commit: the second is a repeat
            out.append({**row, "id": new_ids[key], "votes": 1, "created": True})
        else:
            f = existing.get(key)
            if f is None:  # created earlier in this very batch
                out.append({**row, "id": new_ids[key], "votes": 1, "created": False})
            else:
                out.append({"id": f.id, "text": f.text, "customer": f.customer, "arr": f.arr, "kind": f.kind,
                            "votes": f.vote_count, "created": False})
    return out


def _capture_commands(session: Session, reqs: list[CommandText], rows: list[dict[str, Any]],
                      now: datetime) -> dict[str, int]:
    """Three statements for a commit's worth of captures: the items (INSERT … ON CONFLICT DO NOTHING
    RETURNING), the capturers' votes, the duplicate checks. -> {source_key: new id}; `rows` get their
    channel's account (customer, ARR)."""
    accounts = {(team, ch): (customer, arr) for team, ch, customer, arr in session.execute(
        select(Channel.team_id, Channel.channel_id, Channel.customer, Channel.customer_arr)
        .where(Channel.channel_id.in_({r.channel for r in reqs}), Channel.customer.is_not(None)))}
    for row in rows:
        row["customer"], row["arr"] = accounts.get((row["team_id"], row["channel"]), (None, None))
    new_ids = {key: fid for fid, key in session.connection().execute(_FEEDBACK_INSERT(session), rows).all()}
    if new_ids:
        # One vote and one check per new item, though a double click may have brought its request twice.
        firsts = {row["source_key"]: (req, row) for req, row in reversed(list(zip(reqs, rows, strict=True)))
                  if row["source_key"] in new_ids}.values()
        session.connection().execute(_VOTE_INSERT, [
            {"feedback_id": new_ids[row["source_key"]], "user_id": row["reporter"], "via": "capture",
             "created_at": now} for _, row in firsts])
        checks = [merging.suggestion_job(team_id=r.team_id, feedback_id=new_ids[row["source_key"]], user=r.user,
                                         channel=r.channel, response_url=r.response_url)
                  for r, row in firsts if r.suggest]
        if checks:
            insert_ignore_many(session, Job, checks, conflict=["key"])
    return new_ids


# PostgreSQL: the whole commit's captures in ONE statement with a fixed text (psycopg prepares it once):
# the requests arrive as arrays, each new item takes its channel's account, and its capture vote and its
# duplicate check (the rows `_capture_commands` writes, `merging.suggestion_job`'s key and payload) are
# written by the same statement. Three statements and their round trips were most of the group-commit
# writer's time under load (README "Measured on this machine", *Acks*).
_CAPTURE_PG = """
WITH req AS (
    SELECT * FROM unnest(%(team)s::text[], %(key)s::text[], %(text)s::text[], %(channel)s::text[],
                         %(user)s::text[], %(suggest)s::bool[], %(response_url)s::text[])
        AS r(team_id, source_key, text, channel, reporter, suggest, response_url)
), new AS (
    INSERT INTO feedback (team_id, source_key, text, kind, customer, arr, channel, reporter, captured_by, source,
                          status, text_pending, created_at, updated_at)
    SELECT r.team_id, r.source_key, r.text, 'feedback', c.customer, c.customer_arr, r.channel, r.reporter,
           r.reporter, 'command', 'active', false, %(now)s, %(now)s
    FROM req r LEFT JOIN channels c ON c.team_id = r.team_id AND c.channel_id = r.channel AND c.customer IS NOT NULL
    ON CONFLICT (source_key) DO NOTHING
    RETURNING id, team_id, source_key, channel, reporter, customer, arr
), votes AS (
    INSERT INTO feedback_votes (feedback_id, user_id, via, created_at)
    SELECT id, reporter, 'capture', %(now)s FROM new
), checks AS (
    INSERT INTO jobs (key, kind, team_id, payload, status, attempts, run_after, created_at)
    SELECT 'similar:' || n.id, 'feedback.similar', n.team_id,
           json_build_object('feedback_id', n.id, 'user', n.reporter, 'channel', n.channel,
                             'response_url', r.response_url),
           'pending', 0, %(now)s, %(now)s
    FROM new n JOIN (SELECT DISTINCT ON (source_key) * FROM req) r ON r.source_key = n.source_key
    WHERE r.suggest
    ON CONFLICT (key) DO NOTHING
)
SELECT id, source_key, customer, arr FROM new
"""


def _capture_commands_pg(session: Session, reqs: list[CommandText], rows: list[dict[str, Any]],
                         now: datetime) -> dict[str, int]:
    """`_capture_commands` in one round trip (`_CAPTURE_PG`)."""
    naive = now.astimezone(UTC).replace(tzinfo=None)  # UTCDateTime columns hold naive UTC (bot/core/models.py)
    params = {"team": [r["team_id"] for r in rows], "key": [r["source_key"] for r in rows],
              "text": [r["text"] for r in rows], "channel": [r["channel"] for r in rows],
              "user": [r["reporter"] for r in rows], "suggest": [q.suggest for q in reqs],
              "response_url": [q.response_url for q in reqs], "now": naive}
    raw = session.connection().connection.driver_connection
    out: dict[str, int] = {}
    with raw.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(_CAPTURE_PG, params, prepare=True)
        found = {key: (fid, customer, arr) for fid, key, customer, arr in cur.fetchall()}
    for row in rows:
        if (hit := found.get(row["source_key"])) is not None:
            out[row["source_key"]] = hit[0]
            row["customer"], row["arr"] = hit[1], hit[2]
    return out


def _FEEDBACK_INSERT(session: Session) -> Any:

    return _insert_stmt(session, Feedback, ["source_key"], returning=("id", "source_key"))


def add_vote(session: Session, *, feedback_id: int, user_id: str, via: str) -> bool:
    """Count `user_id` for this item via one route. Returns True if that person is a new voter.
    A vote for an item merged into another one counts for the surviving item."""
    into = session.scalar(select(Feedback.merged_into).where(Feedback.id == feedback_id))
    feedback_id = into or feedback_id
    had = session.scalar(
        select(FeedbackVote.id).where(FeedbackVote.feedback_id == feedback_id, FeedbackVote.user_id == user_id)
    )
    insert_ignore(session, FeedbackVote, {"feedback_id": feedback_id, "user_id": user_id, "via": via,
                                          "created_at": utcnow()},
                  conflict=["feedback_id", "user_id", "via"])
    return had is None


def remove_vote(session: Session, *, feedback_id: int, user_id: str, via: str) -> Feedback | None:
    """Drop one route of support.

    README "What people can do": removing the last tagging reaction of the person who captured an item, with no other
    votes, withdraws it. Others taking their reaction back only lose their vote.
    """
    session.execute(
        delete(FeedbackVote).where(
            FeedbackVote.feedback_id == feedback_id, FeedbackVote.user_id == user_id, FeedbackVote.via == via
        )
    )
    item = session.get(Feedback, feedback_id)
    if item is None:
        return None
    session.refresh(item, ["votes"])
    if item.source == "reaction" and item.status == "active" and user_id == item.captured_by and not item.votes:
        item.status, item.withdrawn_reason = "withdrawn", "reaction_removed"
    return item


def follow_edit(session: Session, *, team_id: str, channel: str, ts: str, text: str) -> Feedback | None:
    """The source message was edited: the item's text follows it."""
    item = find_by_message(session, team_id=team_id, channel=channel, ts=ts)
    if item is not None and text.strip() and item.text != text:
        item.text, item.text_pending = text[:MAX_TEXT], False
        item.embedding, item.embedding_model = None, None  # recomputed by the worker
    return item


def follow_delete(session: Session, *, team_id: str, channel: str, ts: str) -> Feedback | None:
    """The source message was deleted: withdraw (kept, but left out of digests and the default export)."""
    item = find_by_message(session, team_id=team_id, channel=channel, ts=ts)
    if item is not None and item.status != "withdrawn":
        item.status, item.withdrawn_reason = "withdrawn", "source_deleted"
    return item


def fill_from_slack(session: Session, *, feedback_id: int, text: str | None = None, reporter: str | None = None,
                    permalink: str | None = None, thread_ts: str | None = None) -> Feedback | None:
    """Complete an item with what the worker fetched from the Web API after the ack."""
    item = session.get(Feedback, feedback_id)
    if item is None:
        return None
    if text is not None and (item.text_pending or not item.text.strip()):
        item.text, item.text_pending = text[:MAX_TEXT], False
    if reporter and not item.reporter:
        item.reporter = reporter
    if permalink:
        item.permalink = permalink
    if thread_ts and not item.thread_ts:
        item.thread_ts = thread_ts
    return item


def update_details(session: Session, *, team_id: str, feedback_id: int, text: str | None = None,
                   customer: str | None = None, area: str | None = None, kind: str | None = None,
                   arr: float | None = None) -> Feedback:
    item = get_feedback(session, feedback_id, team_id=team_id)
    if item is None:
        raise ServiceError(f"{feedback_ref(feedback_id)} does not exist.")
    if text is not None and text.strip():
        if text != item.text:
            item.embedding, item.embedding_model = None, None
        item.text = text[:MAX_TEXT]
    if customer is not None:
        item.customer = customer.strip() or None
    if area is not None:
        item.area = normalise_area(area) or None
    if kind:
        item.kind = kind
    if arr is not None:
        item.arr = arr
    return item


def parse_arr(text: str | None) -> float | None:
    """'120k', '$1.2M', '45,000' -> number; '' -> None; junk -> ServiceError."""
    if text is None or not str(text).strip():
        return None
    t = str(text).strip().lower().replace("$", "").replace(",", "").replace("_", "").replace(" ", "")
    mult = 1.0
    if t.endswith("k"):
        mult, t = 1_000.0, t[:-1]
    elif t.endswith("m"):
        mult, t = 1_000_000.0, t[:-1]
    try:
        value = float(t) * mult
    except ValueError:
        raise ServiceError(f"ARR must be a number such as 120000, 120k or $1.2M (got {text!r}).") from None
    if value < 0 or value != value or value == float("inf"):
        raise ServiceError(f"ARR must be a positive number (got {text!r}).")
    return value


# --- export -------------------------------------------------------------------------------------

EXPORT_FIELDS = ["id", "text", "kind", "area", "customer", "arr", "channel", "ts", "permalink", "reporter",
                 "captured_by", "votes", "source", "created_at", "decision_ids", "merged_into"]


def feedback_record(item: Feedback, decision_ids: list[int]) -> dict[str, Any]:
    return {
        "id": item.public_id, "text": item.text, "kind": item.kind, "area": item.area,
        "customer": item.customer, "arr": item.arr, "channel": item.channel, "ts": item.ts,
        "permalink": item.permalink, "reporter": item.reporter, "captured_by": item.captured_by,
        "votes": item.vote_count, "source": item.source,
        "created_at": item.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "decision_ids": [decision_ref(d) for d in sorted(decision_ids)],
        "merged_into": feedback_ref(item.merged_into) if item.merged_into else None,
    }


def export_feedback(session: Session, *, include_withdrawn: bool = False, team_id: str | None = None,
                    batch: int = 1000) -> Iterator[dict[str, Any]]:
    q = select(Feedback).order_by(Feedback.id)
    if not include_withdrawn:
        q = q.where(Feedback.status == "active")
    if team_id:
        q = q.where(Feedback.team_id == team_id)
    links: dict[int, list[int]] = {}
    for fid, did in session.execute(select(DecisionFeedback.feedback_id, DecisionFeedback.decision_id)):
        links.setdefault(fid, []).append(did)
    for item in session.scalars(q.execution_options(yield_per=batch)):
        rec = feedback_record(item, links.get(item.id, []))
        if include_withdrawn:
            rec["status"] = item.status
        yield rec


# --- import -------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    def summary(self) -> str:
        lines = [f"imported {self.imported}, already present {self.duplicates}, rejected {len(self.rejected)}"]
        lines += [f"  line {n}: {why}" for n, why in self.rejected]
        return "\n".join(lines)


def _parse_created(value: str) -> datetime:
    v = value.strip()
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise ValueError(f"created_at {value!r} is not ISO 8601 (e.g. 2026-03-01T14:30:00Z)") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


IMPORT_COLUMNS = "text (required); optional: area, kind, customer, arr, created_at, reporter"
# Longest value each column may hold; a longer one is that row's error (Slack's message ceiling for text).
IMPORT_LIMITS = {"text": MAX_TEXT, "customer": 255, "reporter": 255, "area": 80, "kind": 40, "arr": 40,
                 "created_at": 64}


def import_feedback_csv(session_factory: Any, text: str, *, team_id: str, default_reporter: str | None = None,
                        progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import the rows of a decoded CSV file (see bot/core/csvfile.py); each good row in its own transaction
    so a bad one never takes others with it.

    Idempotent: a row's natural key is a hash of its content, so importing a file twice adds nothing.
    `session_factory` is a context manager factory yielding a Session in a transaction (Database.session).
    `progress`, if given, is called with the line of the file reached, record by record.
    """
    report = ImportReport()
    found = csvfile.records(text)
    header = next(found, None)
    columns = [c.strip().lower() for c in (header.cells or [])] if header else []
    if "text" not in columns:
        report.rejected.append((1, f"the header must include a 'text' column ({IMPORT_COLUMNS})"))
        return report
    for rec in found:
        if progress is not None:
            progress(rec.end)
        if rec.cells is None:
            span = f"; lines {rec.line}–{rec.end} not imported" if rec.end > rec.line else ""
            report.rejected.append((rec.line, f"malformed CSV record ({rec.error}){span}"))
            continue
        try:
            values = _import_values(columns, rec.cells)
        except (ValueError, ServiceError) as e:
            report.rejected.append((rec.line, str(e)))
            continue
        digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:40]
        try:
            with session_factory() as session:
                _, created = capture_feedback(
                    session, team_id=team_id, source="import", source_key=f"import:{team_id}:{digest}",
                    text=values["text"], kind=values["kind"], area=values["area"], customer=values["customer"],
                    arr=values["arr"], created_at=values["created_at"],
                    reporter=values["reporter"] or default_reporter,
                )
        except (SQLAlchemyError, ServiceError) as e:  # the database refused this row: name it, go on
            report.rejected.append((rec.line, f"could not be stored ({type(e).__name__})"))
            continue
        if created:
            report.imported += 1
        else:
            report.duplicates += 1
    return report


def _import_values(columns: list[str], cells: list[str]) -> dict[str, Any]:
    if len(cells) != len(columns):  # a short or long row is a sign of broken quoting: never guess
        many = "many" if len(cells) > len(columns) else "few"
        raise ValueError(f"too {many} cells ({len(cells)} for {len(columns)} columns)")
    row = dict(zip(columns, (c.strip() for c in cells), strict=True))
    for name, limit in IMPORT_LIMITS.items():
        if len(row.get(name) or "") > limit:  # checked first: no message ever echoes a huge value
            raise ValueError(f"{name} is {len(row[name]):,} characters long; the limit is {limit:,}")
    text = row.get("text") or ""
    if not text:
        raise ValueError("text is empty")
    kind = (row.get("kind") or "").lower() or "feedback"
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    created = row.get("created_at") or ""
    return {
        "text": text,
        "kind": kind,
        "area": row.get("area") or None,
        "customer": row.get("customer") or None,
        "arr": parse_arr(row.get("arr")),
        "created_at": _parse_created(created) if created else None,
        "reporter": row.get("reporter") or None,
    }
