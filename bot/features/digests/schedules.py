"""Digest schedules: parsing `/digest` arguments, and periods computed in the schedule's own time zone.

Run times are wall-clock times in the schedule's IANA zone ("Monday 09:00 in New York"), turned into
UTC instants with zoneinfo for each date separately, so a weekly digest stays at 09:00 local across
the March and November DST switches instead of drifting by an hour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.common import insert_ignore, normalise_area, split_list
from bot.core.models import DigestRun, DigestSchedule

FORMS = [
    ("/digest now", "post the digest of the last period in this channel now"),
    ("/digest weekly DAY HH:MM [areas]", "every week, e.g. /digest weekly mon 09:00 billing, mobile"),
    ("/digest daily HH:MM [areas]", "every day, e.g. /digest daily 17:30"),
    ("/digest off", "stop the scheduled digest in this channel"),
    ("/digest", "show this channel's schedule"),
]

DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_TIME = re.compile(r"^(\d{1,2})(?::|h|\.)?(\d{2})?\s*(am|pm)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Period:
    key: str  # unique per channel: what DigestRun is keyed on
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive; also the run's due time for scheduled periods
    label: str  # "Mon 4 Mar – Sun 10 Mar" in the schedule's zone


def parse_day(word: str) -> int | None:
    w = word.strip().lower().rstrip(".,")
    if len(w) < 2:
        return None
    for i, name in enumerate(DAYS):
        if name.startswith(w) or (w.endswith("s") and name == w[:-1]):  # "mondays"
            return i
    return None


def parse_time(word: str) -> str | None:
    """'9:00', '09:00', '9am', '5:30pm', '17h30' -> 'HH:MM'; anything else -> None."""
    m = _TIME.match(word.strip())
    if not m:
        return None
    hour, minute, ampm = int(m.group(1)), int(m.group(2) or 0), (m.group(3) or "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    elif m.group(2) is None:
        return None  # a bare "9" is too ambiguous to schedule on
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def parse_digest_args(text: str) -> tuple[str, dict[str, Any]]:
    """-> ("show"|"now"|"off"|"help"|"schedule"|"usage", args)."""
    words = (text or "").strip().split(None, 3)
    if not words:
        return "show", {}
    head = words[0].lower()
    if head in ("now", "off", "help") and len(words) == 1:
        return head, {}
    if head in ("status", "show") and len(words) == 1:
        return "show", {}
    if head == "weekly":
        if len(words) < 3:
            return "usage", {"problem": "Say which day and time, e.g. `weekly mon 09:00`."}
        day = parse_day(words[1])
        if day is None:
            return "usage", {"problem": f"“{words[1]}” is not a day of the week (mon, tue, … sun)."}
        at = parse_time(words[2])
        if at is None:
            return "usage", {"problem": f"“{words[2]}” is not a time of day (HH:MM, e.g. 09:00)."}
        rest = words[3] if len(words) > 3 else ""
        return "schedule", {"cadence": "weekly", "weekday": day, "at_time": at, "areas": _areas(rest)}
    if head == "daily":
        if len(words) < 2:
            return "usage", {"problem": "Say at what time, e.g. `daily 09:00`."}
        at = parse_time(words[1])
        if at is None:
            return "usage", {"problem": f"“{words[1]}” is not a time of day (HH:MM, e.g. 09:00)."}
        rest = " ".join(words[2:])
        return "schedule", {"cadence": "daily", "weekday": None, "at_time": at, "areas": _areas(rest)}
    return "usage", {"problem": f"I don't know “{(text or '').strip()[:60]}”."}


def _areas(text: str) -> list[str]:
    return [normalise_area(a) for a in split_list(text)]


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _at(day: date, at_time: str, tz: ZoneInfo) -> datetime:
    hh, mm = (int(x) for x in at_time.split(":"))
    # A wall time that doesn't exist (02:30 on spring-forward day) resolves with the pre-switch offset,
    # i.e. an hour later in real time; one that exists twice (autumn) takes its first occurrence.
    return datetime.combine(day, time(hh, mm), tzinfo=tz).astimezone(UTC)


def _label(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    s, e = start.astimezone(tz), (end - timedelta(seconds=1)).astimezone(tz)
    if s.date() == e.date():
        return s.strftime("%a %-d %b %Y")
    return f"{s.strftime('%a %-d %b')} – {e.strftime('%a %-d %b %Y')}"


def latest_period(*, cadence: str, weekday: int | None, at_time: str, tz_name: str, now: datetime) -> Period:
    """The most recent period whose run time is at or before `now`."""
    tz = zone(tz_name)
    local_today = now.astimezone(tz).date()
    day = local_today
    for _ in range(15):
        if (cadence == "daily" or day.weekday() == weekday) and _at(day, at_time, tz) <= now:
            break
        day -= timedelta(days=1)
    step = timedelta(days=1 if cadence == "daily" else 7)
    end = _at(day, at_time, tz)
    start = _at(day - step, at_time, tz)  # same wall time one step back: 167 or 169 h across DST
    return Period(key=f"{cadence}:{day.isoformat()}", start=start, end=end, label=_label(start, end, tz))


def next_run(*, cadence: str, weekday: int | None, at_time: str, tz_name: str, now: datetime) -> datetime:
    tz = zone(tz_name)
    day = now.astimezone(tz).date()
    for _ in range(15):
        if (cadence == "daily" or day.weekday() == weekday) and _at(day, at_time, tz) > now:
            return _at(day, at_time, tz)
        day += timedelta(days=1)
    raise AssertionError("unreachable: a weekly slot exists within 8 days")


def period_of(schedule: DigestSchedule, now: datetime) -> Period:
    return latest_period(cadence=schedule.cadence, weekday=schedule.weekday, at_time=schedule.at_time,
                         tz_name=schedule.timezone, now=now)


def manual_period(*, now: datetime, cadence: str | None = None, tz_name: str = "UTC",
                  since: datetime | None = None) -> Period:
    """`/digest now` and the CLI: the last 7 days (1 for a daily schedule) up to now, or since a date."""
    tz = zone(tz_name)
    start = since or now - timedelta(days=1 if cadence == "daily" else 7)
    return Period(key=f"now:{now.strftime('%Y-%m-%dT%H:%M')}", start=start, end=now, label=_label(start, now, tz))


def describe(schedule: DigestSchedule) -> str:
    when = "every day" if schedule.cadence == "daily" else f"every {DAYS[schedule.weekday or 0].title()}"
    areas = f", areas: {', '.join(schedule.areas)}" if schedule.areas else ""
    return f"{when} at {schedule.at_time} ({schedule.timezone}){areas}"


# --- storage --------------------------------------------------------------------------------------


def get_schedule(session: Session, *, team_id: str, channel: str) -> DigestSchedule | None:
    return session.scalar(select(DigestSchedule).where(DigestSchedule.team_id == team_id,
                                                       DigestSchedule.channel == channel))


def save_schedule(session: Session, *, team_id: str, channel: str, cadence: str, weekday: int | None,
                  at_time: str, timezone: str, areas: list[str], by: str | None,
                  now: datetime | None = None) -> DigestSchedule:
    """Create or replace the channel's schedule. `updated_at` is when it took effect: the planner never
    creates runs for periods that ended before it."""
    now = now or clock.now()
    zone(timezone)  # fails loudly on garbage only via fallback; callers pass IANA names
    sched = get_schedule(session, team_id=team_id, channel=channel)
    if sched is None:
        sched = DigestSchedule(team_id=team_id, channel=channel, created_at=now)
        session.add(sched)
    sched.cadence, sched.weekday, sched.at_time = cadence, weekday, at_time
    sched.timezone, sched.areas, sched.active, sched.created_by = timezone, list(areas), True, by
    sched.updated_at = now
    session.flush()
    return sched


def disable_schedule(session: Session, *, team_id: str, channel: str) -> bool:
    sched = get_schedule(session, team_id=team_id, channel=channel)
    if sched is None or not sched.active:
        return False
    sched.active = False
    return True


def active_schedules(session: Session) -> list[DigestSchedule]:
    return list(session.scalars(select(DigestSchedule).where(DigestSchedule.active.is_(True))))


# --- runs -----------------------------------------------------------------------------------------


def insert_run(session: Session, *, team_id: str, channel: str, period: Period, schedule_id: int | None,
               now: datetime, late: bool = False, requested_by: str | None = None) -> bool:
    """Create the run for (team, channel, period) unless it exists; True if this call created it."""

    return insert_ignore(session, DigestRun, {
        "team_id": team_id, "channel": channel, "schedule_id": schedule_id, "period_key": period.key,
        "period_start": period.start, "period_end": period.end, "status": "pending", "late": late,
        "reply_ts": [], "attempts": 0, "requested_by": requested_by, "created_at": now,
    }, conflict=["team_id", "channel", "period_key"])


def request_now(session: Session, *, team_id: str, channel: str, user: str | None, now: datetime,
                fallback_tz: str = "UTC") -> tuple[bool, Period]:
    """`/digest now`: a run for the last period up to now (one per channel and minute: a double
    submit is the same run)."""
    sched = get_schedule(session, team_id=team_id, channel=channel)
    period = manual_period(now=now, cadence=sched.cadence if sched and sched.active else None,
                           tz_name=sched.timezone if sched else fallback_tz)
    created = insert_run(session, team_id=team_id, channel=channel, period=period,
                         schedule_id=sched.id if sched and sched.active else None, now=now, requested_by=user)
    return created, period


def plan_runs(session: Session, *, now: datetime, late_after: timedelta = timedelta(minutes=5),
              max_back: int = 8) -> int:
    """For every active schedule, create the runs of the periods whose time has passed (the latest, and
    earlier ones missed while down, never any before the schedule took effect). Returns runs created."""

    created = 0
    for sched in active_schedules(session):
        effective = sched.updated_at or sched.created_at
        candidates: list[Period] = []
        at = now
        for _ in range(max_back):
            p = period_of(sched, at)
            if p.end < effective:
                break
            candidates.append(p)
            at = p.end - timedelta(seconds=1)
        if not candidates:
            continue
        existing = set(session.scalars(select(DigestRun.period_key).where(
            DigestRun.team_id == sched.team_id, DigestRun.channel == sched.channel,
            DigestRun.period_key.in_([p.key for p in candidates]))))
        for p in reversed(candidates):
            if p.key in existing:
                continue
            created += insert_run(session, team_id=sched.team_id, channel=sched.channel, period=p,
                                  schedule_id=sched.id, now=now, late=now - p.end > late_after)
    return created
