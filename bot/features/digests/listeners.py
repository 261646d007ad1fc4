"""/digest: post now, schedule, stop, show. Writes and acks; the worker does every Web API call
(users.info for the time zone, the posting itself)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.common import enqueue
from bot.features.digests import schedules as svc
from bot.features.feedback import render
from bot.slack.edge import Edge
from bot.slack.render.connect import DIGEST_REFUSAL
from bot.slack.render.text import escape


def register(app: AsyncApp, edge: Edge) -> None:
    async def digest_command(ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
        team, channel, user = await edge.workspace(body, context), body["channel_id"], body["user_id"]
        action, args = svc.parse_digest_args(body.get("text", ""))
        now = clock.now()
        if action in ("now", "schedule") and edge.channel_known_shared(body, context, channel):
            # Known from an earlier look; otherwise the worker asks Slack before posting or scheduling.
            await ack(**render.ephemeral(DIGEST_REFUSAL))
            return
        if action == "usage":
            await ack(**render.usage("/digest", args["problem"], svc.FORMS))
            return
        if action == "help":
            await ack(**render.usage("/digest", "Here is what /digest can do.", svc.FORMS))
            return
        if action == "show":
            with edge.db.read_session() as s:
                sched = svc.get_schedule(s, team_id=team, channel=channel)
                if sched is None or not sched.active:
                    msg = "No digest is scheduled in this channel. `/digest weekly mon 09:00` schedules one."
                else:
                    nxt = svc.next_run(cadence=sched.cadence, weekday=sched.weekday, at_time=sched.at_time,
                                       tz_name=sched.timezone, now=now).astimezone(svc.zone(sched.timezone))
                    msg = (f"The digest is posted here {svc.describe(sched)}. "
                           f"Next one: {nxt.strftime('%a %-d %b %H:%M %Z')}. `/digest off` stops it.")
            await ack(**render.ephemeral(msg, ":calendar: " + escape(msg)))
            return
        if action == "off":
            changed = await edge.write(lambda s: svc.disable_schedule(s, team_id=team, channel=channel))
            await ack(**render.ephemeral("The scheduled digest in this channel is stopped." if changed
                                         else "No digest was scheduled in this channel."))
            return
        if action == "now":
            fallback = edge.settings.loopline_timezone

            def request(s: Session) -> bool:
                created, _ = svc.request_now(s, team_id=team, channel=channel, user=user, now=now,
                                             fallback_tz=fallback)
                return created

            created = await edge.write(request)
            await ack(**render.ephemeral(
                "Building the digest of the last period; it will appear in this channel in a moment."
                if created else "That digest is already on its way."))
            return

        # A schedule: the person's time zone needs users.info, a Web API call, so it happens after the ack.
        def store(s: Session) -> None:
            enqueue(s, key=f"digest-schedule:{team}:{channel}:{body.get('trigger_id') or now.isoformat()}",
                    kind="digest.schedule", team_id=team,
                    payload={**args, "channel": channel, "user": user, "response_url": body.get("response_url")})

        await edge.write(store)
        await ack(**render.ephemeral("Scheduling… (reading your time zone)"))

    app.command("/digest")(digest_command)
