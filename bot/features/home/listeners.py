"""App Home buttons."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from sqlalchemy.orm import Session

from bot.core.common import enqueue
from bot.slack.edge import Edge
from bot.slack.ids import Action


def register(app: AsyncApp, edge: Edge) -> None:
    @app.action(Action.HOME_REFRESH)
    async def refresh(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        team, user = await edge.workspace(body, context), body["user"]["id"]

        def put(s: Session) -> None:
            enqueue(s, key=f"home:{user}:{body['actions'][0].get('action_ts')}", kind="home.publish", team_id=team,
                    payload={"user": user, "user_team": body["user"].get("team_id")})

        await edge.write(put)
        await ack()
