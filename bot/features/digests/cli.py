"""`loopline digest --channel C [--print] [--json] [--since DATE]`.

--print and --json read the database only (no Slack credentials needed); without them the digest is
posted now, through the same run row and poster as `/digest now`, so it is posted once.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import select

from bot.core import clock
from bot.core.db import Database
from bot.core.models import DigestRun
from bot.core.progress import Progress
from bot.core.settings import ConfigError, Settings
from bot.core.slack_client import SlackClients
from bot.core.workspace import resolve_team
from bot.features.digests import schedules as sched_svc
from bot.features.digests.jobs import cached_embedder, claim_run, process_claimed
from bot.features.digests.render import render_digest
from bot.features.digests.service import DigestData, build_digest, namer_for

_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")


def _period(settings: Settings, db: Database, team: str, channel: str, since: str | None,
            now: datetime) -> sched_svc.Period:
    with db.read_session() as s:
        sched = sched_svc.get_schedule(s, team_id=team, channel=channel)
    tz_name = sched.timezone if sched else settings.loopline_timezone
    start = None
    if since:
        try:
            day = date.fromisoformat(since)
        except ValueError:
            raise ConfigError(f"--since {since!r} is not a date (YYYY-MM-DD)") from None
        start = datetime.combine(day, time(0, 0), tzinfo=sched_svc.zone(tz_name)).astimezone(UTC)
        if start >= now:
            raise ConfigError(f"--since {since} is not in the past")
    cadence = sched.cadence if sched and sched.active else None
    return sched_svc.manual_period(now=now, cadence=cadence, tz_name=tz_name, since=start)


def to_terminal(messages: list[dict[str, Any]]) -> str:
    """Block Kit -> readable plain text (links shown as 'label (url)', entities unescaped)."""
    out: list[str] = []
    for n, msg in enumerate(messages):
        out.append("=" * 72 if n == 0 else "  └─ reply " + "─" * 58)
        for b in msg["blocks"]:
            texts = []
            if b["type"] in ("header", "section") and "text" in b:
                texts.append(b["text"]["text"])
            elif b["type"] == "context":
                texts.extend(e.get("text", "") for e in b["elements"])
            for t in texts:
                t = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", t)
                out.append(html.unescape(t.replace(":thread:", "").replace("*", "")))
    return "\n".join(out) + "\n"


def run_digest_command(settings: Settings, args: argparse.Namespace) -> int:
    db = Database(settings.database_url)
    try:
        db.upgrade()
        team = resolve_team(settings, db, getattr(args, "team", None))
        now = clock.now()
        period = _period(settings, db, team, args.channel, args.since, now)
        if args.json or args.print_:
            with db.read_session() as s, Progress("digest") as bar:
                sched = sched_svc.get_schedule(s, team_id=team, channel=args.channel)

                namer = namer_for(settings)
                data = build_digest(s, team_id=team, channel=args.channel, period_key=period.key,
                                    start=period.start, end=period.end, label=period.label,
                                    areas=list(sched.areas) if sched and sched.active and sched.areas else None,
                                    embedder=cached_embedder(settings), namer=namer,
                                    stale_days=settings.loopline_stale_days, now=now, progress=bar.stage)
                if namer is not None:
                    namer.close()
            if args.json:
                json.dump(data.to_dict(), sys.stdout, indent=2, ensure_ascii=False, default=str)
                sys.stdout.write("\n")
            else:
                sys.stdout.write(to_terminal(render_digest(data)))
            return 0
        settings.require("slack_bot_token")
        return _post_now(settings, db, team, args.channel, period, now)
    finally:
        db.dispose()


def _post_now(settings: Settings, db: Database, team: str, channel: str, period: sched_svc.Period,
              now: datetime) -> int:

    with db.session() as s:
        sched = sched_svc.get_schedule(s, team_id=team, channel=channel)
        sched_svc.insert_run(s, team_id=team, channel=channel, period=period, now=now,
                             schedule_id=sched.id if sched and sched.active else None, requested_by=None)
        rid = s.scalar(select(DigestRun.id).where(DigestRun.team_id == team, DigestRun.channel == channel,
                                                  DigestRun.period_key == period.key))
    assert rid is not None
    if claim_run(db, run_id=rid) is None:
        print(f"digest run {rid} is being posted by another process", file=sys.stderr)
        return 1
    clients = SlackClients(settings)
    with Progress("digest") as bar:
        process_claimed(db, settings, clients.for_team, rid, progress=bar.stage)
    with db.read_session() as s:
        run = s.get(DigestRun, rid)
        assert run is not None
        if run.status != "posted":
            print(f"digest not posted: {run.error}", file=sys.stderr)
            return 1
        data = DigestData.from_dict(run.summary or {})
        print(f"posted the digest of {data.period_label} in {channel} (ts {run.ts}, "
              f"{len(run.reply_ts)} thread replies)")
    return 0
