"""/digest argument parsing and period computation in the schedule's own time zone (DST included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.models import DigestRun
from bot.features.digests import schedules as svc

NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize("text,expected", [
    ("weekly mon 09:00", {"cadence": "weekly", "weekday": 0, "at_time": "09:00", "areas": []}),
    ("Weekly Friday 5:30pm", {"cadence": "weekly", "weekday": 4, "at_time": "17:30", "areas": []}),
    ("weekly tue 9:05 billing, Mobile  App", {"cadence": "weekly", "weekday": 1, "at_time": "09:05",
                                             "areas": ["billing", "mobile app"]}),
    ("daily 17h30", {"cadence": "daily", "weekday": None, "at_time": "17:30", "areas": []}),
    ("daily 08:00 #billing", {"cadence": "daily", "weekday": None, "at_time": "08:00", "areas": ["billing"]}),
])
def test_parse_schedules(text, expected):
    assert svc.parse_digest_args(text) == ("schedule", expected)


@pytest.mark.parametrize("text,action", [("", "show"), ("  ", "show"), ("now", "now"), ("NOW", "now"),
                                         ("off", "off"), ("help", "help")])
def test_parse_simple(text, action):
    assert svc.parse_digest_args(text)[0] == action


@pytest.mark.parametrize("text,needle", [
    ("weekly", "day and time"), ("weekly funday 09:00", "funday"), ("weekly mon 25:00", "25:00"),
    ("weekly mon 9", "“9”"), ("daily", "what time"), ("daily noonish", "noonish"),
    ("monthly 1 09:00", "monthly"), ("now please", "now please"), ("<!channel> now", "<!channel>"),
])
def test_parse_errors_say_what_was_wrong(text, needle):
    action, args = svc.parse_digest_args(text)
    assert action == "usage" and needle in args["problem"]


def _local(*a: int) -> datetime:
    return datetime(*a, tzinfo=NY)


def test_weekly_monday_9am_new_york_across_spring_dst():
    # DST starts Sun 10 Mar 2024 in New York: 09:00 EST is 14:00 UTC before, 09:00 EDT is 13:00 UTC after.
    kw = {"cadence": "weekly", "weekday": 0, "at_time": "09:00", "tz_name": "America/New_York"}
    before = svc.latest_period(now=_local(2024, 3, 8, 12, 0), **kw)
    assert before.end == datetime(2024, 3, 4, 14, 0, tzinfo=UTC)
    after = svc.latest_period(now=_local(2024, 3, 11, 9, 0), **kw)
    assert after.key == "weekly:2024-03-11"
    assert after.end == datetime(2024, 3, 11, 13, 0, tzinfo=UTC)
    assert after.start == before.end  # contiguous periods: nothing counted twice or skipped
    assert after.end - after.start == timedelta(hours=167)
    # One minute before the run time it's still last week's period.
    assert svc.latest_period(now=_local(2024, 3, 11, 8, 59), **kw).key == "weekly:2024-03-04"
    assert svc.next_run(now=_local(2024, 3, 8, 12, 0), **kw) == datetime(2024, 3, 11, 13, 0, tzinfo=UTC)


def test_weekly_across_autumn_dst_and_daily():
    kw = {"cadence": "weekly", "weekday": 0, "at_time": "09:00", "tz_name": "America/New_York"}
    p = svc.latest_period(now=_local(2024, 11, 4, 10, 0), **kw)  # DST ended Sun 3 Nov
    assert p.end == datetime(2024, 11, 4, 14, 0, tzinfo=UTC)
    assert p.end - p.start == timedelta(hours=169)
    assert p.end.astimezone(NY).hour == 9 and p.start.astimezone(NY).hour == 9
    d = svc.latest_period(cadence="daily", weekday=None, at_time="09:00", tz_name="America/New_York",
                          now=_local(2024, 3, 10, 9, 30))
    assert d.key == "daily:2024-03-10" and d.end - d.start == timedelta(hours=23)


def test_nonexistent_local_time_still_runs_once():
    # 02:30 does not exist on 10 Mar 2024 in New York; the run still happens, once, that day.
    kw = {"cadence": "daily", "weekday": None, "at_time": "02:30", "tz_name": "America/New_York"}
    keys = {svc.latest_period(now=datetime(2024, 3, 10, 5, 0, tzinfo=UTC) + timedelta(minutes=10 * i), **kw).key
            for i in range(60)}
    assert keys == {"daily:2024-03-09", "daily:2024-03-10"}


def test_planner_creates_each_period_once_never_before_the_schedule(db):
    created = datetime(2024, 3, 6, 15, 0, tzinfo=UTC)  # a Wednesday
    with db.session() as s:
        svc.save_schedule(s, team_id="T0001", channel="C0PRODUCT", cadence="weekly", weekday=0, at_time="09:00",
                          timezone="America/New_York", areas=[], by="U0PM", now=created)
    with db.session() as s:  # same week: the period that ended Monday predates the schedule
        assert svc.plan_runs(s, now=created + timedelta(hours=1)) == 0
    due = datetime(2024, 3, 11, 13, 0, tzinfo=UTC)
    with db.session() as s:
        assert svc.plan_runs(s, now=due + timedelta(seconds=5)) == 1
    with db.session() as s:  # a second planner (restart, replica) adds nothing
        assert svc.plan_runs(s, now=due + timedelta(seconds=40)) == 0
    # Down for two weeks: both missed periods are created, marked late, none twice.
    with db.session() as s:
        assert svc.plan_runs(s, now=due + timedelta(days=14, hours=3)) == 2
    with db.read_session() as s:
        runs = sorted(s.query(DigestRun).all(), key=lambda r: r.period_end)
        assert [r.period_key for r in runs] == ["weekly:2024-03-11", "weekly:2024-03-18", "weekly:2024-03-25"]
        assert [r.late for r in runs] == [False, True, True]
    with db.session() as s:
        assert svc.disable_schedule(s, team_id="T0001", channel="C0PRODUCT")
    with db.session() as s:
        assert svc.plan_runs(s, now=due + timedelta(days=30)) == 0
