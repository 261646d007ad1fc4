"""/digest: post now, schedule, stop, show. Writes and acks; the worker does every Web API call
(users.info for the time zone, the posting itself)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.common import enqueue
from bot.features.digests import schedules as svc
from bot.slack.edge import Edge
from bot.slack.render import replies
from bot.slack.render.connect import DIGEST_REFUSAL
from bot.slack.render.text import escape


class DigestListeners:
    """The listeners, each a method small enough to read and test alone; `register` below wires them."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    async def digest_command(self, ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
        team, channel = await self.edge.workspace(body, context), body["channel_id"]
        action, args = svc.parse_digest_args(body.get("text", ""))
        if action in ("now", "schedule") and self.edge.channel_known_shared(body, context, channel):
            # Known from an earlier look; otherwise the worker asks Slack before posting or scheduling.
            await ack(**replies.ephemeral(DIGEST_REFUSAL))
        elif action == "usage":
            await ack(**replies.usage("/digest", args["problem"], svc.FORMS))
        elif action == "help":
            await ack(**replies.usage("/digest", "Here is what /digest can do.", svc.FORMS))
        elif action == "show":
            await ack(**self.show(team, channel))
        elif action == "off":
            await ack(**await self.stop(team, channel))
        elif action == "now":
            await ack(**await self.post_now(team, channel, body["user_id"]))
        else:
            await ack(**await self.schedule(team, channel, body, args))

    def show(self, team: str, channel: str) -> dict[str, Any]:
        with self.edge.db.read_session() as s:
            sched = svc.get_schedule(s, team_id=team, channel=channel)
            if sched is None or not sched.active:
                msg = "No digest is scheduled in this channel. `/digest weekly mon 09:00` schedules one."
            else:
                nxt = svc.next_run(cadence=sched.cadence, weekday=sched.weekday, at_time=sched.at_time,
                                   tz_name=sched.timezone, now=clock.now()).astimezone(svc.zone(sched.timezone))
                msg = (f"The digest is posted here {svc.describe(sched)}. "
                       f"Next one: {nxt.strftime('%a %-d %b %H:%M %Z')}. `/digest off` stops it.")
        return replies.ephemeral(msg, ":calendar: " + escape(msg))

    async def stop(self, team: str, channel: str) -> dict[str, Any]:
        changed = await self.edge.write(lambda s: svc.disable_schedule(s, team_id=team, channel=channel))
        return replies.ephemeral("The scheduled digest in this channel is stopped." if changed
                                 else "No digest was scheduled in this channel.")

    async def post_now(self, team: str, channel: str, user: str) -> dict[str, Any]:
        now, fallback = clock.now(), self.edge.settings.loopline_timezone

        def request(s: Session) -> bool:
            created, _ = svc.request_now(s, team_id=team, channel=channel, user=user, now=now, fallback_tz=fallback)
            return created

        created = await self.edge.write(request)
        return replies.ephemeral("Building the digest of the last period; it will appear in this channel in a moment."
                                 if created else "That digest is already on its way.")

    async def schedule(self, team: str, channel: str, body: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
        """The person's time zone needs users.info, a Web API call, so the schedule is stored by the worker."""
        key = f"digest-schedule:{team}:{channel}:{body.get('trigger_id') or clock.now().isoformat()}"

        def store(s: Session) -> None:
            enqueue(s, key=key, kind="digest.schedule", team_id=team,
                    payload={**args, "channel": channel, "user": body["user_id"],
                             "response_url": body.get("response_url")})

        await self.edge.write(store)
        return replies.ephemeral("Scheduling… (reading your time zone)")


def register(app: AsyncApp, edge: Edge) -> None:
    on = DigestListeners(edge)
    app.command("/digest")(on.digest_command)
