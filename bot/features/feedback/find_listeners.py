"""Finding feedback from Slack: `/feedback search WORDS`, `/feedback customer NAME`, paging, and the
search form opened from App Home. Nothing is searched at the edge: a job is queued (durably, before the
ack) and the worker answers the person privately (bot/features/feedback/finding.py)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core import clock
from bot.features.feedback import find_render as render
from bot.slack.edge import Edge, user_of
from bot.slack.ids import Action, Callback


async def answer_command(edge: Edge, body: dict[str, Any], team: str, action: str, args: dict[str, Any]) -> None:
    """`/feedback search …` / `/feedback customer …` (people of the organisation only: the caller checks)."""
    user, key = body["user_id"], body.get("trigger_id") or f"{clock.now().timestamp()}"
    if action == "search":
        await edge.enqueue(key=f"search:{team}:{key}", kind="feedback.search", team_id=team,
                           payload={"q": args["words"][:render.QUERY_MAX], "page": 0, "user": user,
                                    "response_url": body.get("response_url"),
                                    "capture_text": (body.get("text") or "").strip()[:2000]})
    else:
        await edge.enqueue(key=f"customer:{team}:{key}", kind="feedback.customer", team_id=team,
                           payload={"name": args["name"][:255], "user": user, "response_url": body.get("response_url")})


class FindListeners:
    """The listeners, each a method small enough to read and test alone; `register` below wires them."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    async def page_clicked(self, ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
        if (click := await self.edge.click(ack, body, context, render.read_page_value)) is None:
            return
        team, user, action = click.team, click.user, click.action
        query, number = click.value
        view_id = (body.get("view") or {}).get("id") if (body.get("container") or {}).get("type") == "view" else None
        await self.edge.enqueue(key=f"search:{team}:{action.get('action_ts')}:{user}", kind="feedback.search",
                                team_id=team, payload={"q": query, "page": number, "user": user, "view_id": view_id,
                                                       "response_url": body.get("response_url"), "replace": True})
        await ack()

    async def open_form(self, body: dict[str, Any], client: AsyncWebClient, context: Any, respond: Any) -> None:
        if await self.edge.turned_away_after_ack(body, context, client, respond):
            return
        await client.views_open(trigger_id=body["trigger_id"], view=render.search_modal())

    async def search_submitted(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: Any) -> None:
        team, user = await self.edge.workspace(body, context), user_of(body)
        if why := await self.edge.refuse_if_outside(body, context):
            await ack(response_action="errors", errors={"fb_search": why})
            return
        query = render.read_search_modal(view["state"]["values"]).strip()
        if not query:
            await ack(response_action="errors", errors={"fb_search": "Type a few words to search for."})
            return
        await self.edge.enqueue(key=f"search:{team}:{view['id']}:{view.get('hash', '')}", kind="feedback.search",
                                team_id=team, payload={"q": query[:render.QUERY_MAX], "page": 0, "user": user,
                                                       "view_id": view["id"]})
        await ack(response_action="update", view=render.searching_modal(query))


def register(app: AsyncApp, edge: Edge) -> None:
    on = FindListeners(edge)
    app.action(Action.FEEDBACK_SEARCH_PAGE)(on.page_clicked)
    app.action(Action.FEEDBACK_SEARCH_OPEN)(edge.ack_then(on.open_form))
    app.view(Callback.FEEDBACK_SEARCH_MODAL)(on.search_submitted)
