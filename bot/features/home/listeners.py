"""App Home buttons."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from sqlalchemy.orm import Session

from bot.core.common import enqueue
from bot.slack.edge import Edge
from bot.slack.ids import Action


class HomeListeners:
    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    async def refresh(self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        team, user = await self.edge.workspace(body, context), body["user"]["id"]

        def put(s: Session) -> None:
            enqueue(s, key=f"home:{user}:{body['actions'][0].get('action_ts')}", kind="home.publish", team_id=team,
                    payload={"user": user, "user_team": body["user"].get("team_id")})

        await self.edge.write(put)
        await ack()


def register(app: AsyncApp, edge: Edge) -> None:
    on = HomeListeners(edge)
    app.action(Action.HOME_REFRESH)(on.refresh)
