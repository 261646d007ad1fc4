"""The buttons of a duplicate suggestion: Merge into FB-n, Keep separate, and Undo on the merge note.

Each click is checked on the server (a payload can be forged): refused for anyone not known to be
inside the organisation, ids looked up inside the request's workspace. The change is one database
transaction at the edge (no Web API call); the answer replaces the private note, after the ack.
"""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from sqlalchemy.orm import Session

from bot.core.common import ServiceError, enqueue
from bot.core.models import Feedback
from bot.features.feedback import merge_render as render
from bot.features.feedback import merging
from bot.slack.edge import Edge, user_of
from bot.slack.ids import Action


def _answer(s: Session, body: dict[str, Any], team: str, text: str, blocks: list[dict[str, Any]], *,
            replace: bool = True) -> None:
    action = body["actions"][0]
    enqueue(s, key=f"merge.note:{action.get('action_ts')}:{user_of(body)}", kind="notify.respond", team_id=team,
            payload={"response_url": body.get("response_url"), "user": user_of(body), "replace_original": replace,
                     "text": text, "blocks": blocks})


def _merge_id(value: str) -> int:
    return int(json.loads(value or "null"))


class MergeListeners:
    """The listeners, each a method small enough to read and test alone; `register` below wires them."""

    def __init__(self, edge: Edge, *, on_links_moved: merging.LinksMoved) -> None:
        self.edge = edge
        self.on_links_moved = on_links_moved

    async def merge_clicked(self, ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
        if (click := await self.edge.click(ack, body, context, render.read_value)) is None:
            return
        team, user, action = click.team, click.user, click.action
        new_id, into_id, _ = click.value

        def save(s: Session) -> None:
            try:
                record, _ = merging.merge(s, team_id=team, feedback_id=new_id, into_id=into_id, by=user,
                                          request_key=f"{action.get('action_ts')}:{user}:{new_id}",
                                          on_links_moved=self.on_links_moved)
            except ServiceError as e:
                _answer(s, body, team, *render.problem(str(e)), replace=False)
                return
            [into] = render.similar_of(merging.describe(s, [record.into_id]))
            item = s.get(Feedback, record.feedback_id)
            text, blocks = render.merged(merge_id=record.id, new_id=record.feedback_id, into=into,
                                         text=item.text if item else "")
            _answer(s, body, team, text, blocks)

        await self.edge.write(save)
        await ack()

    async def keep_separate_clicked(self, ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
        if (click := await self.edge.click(ack, body, context, render.read_value)) is None:
            return
        team, user = click.team, click.user
        new_id, other_id, offered = click.value

        def save(s: Session) -> None:
            try:
                merging.keep_separate(s, team_id=team, feedback_id=new_id, other_id=other_id, by=user)
            except ServiceError as e:
                _answer(s, body, team, *render.problem(str(e)), replace=False)
                return
            left = merging.still_offered(s, team_id=team, feedback_id=new_id, offered=offered)
            if left:  # the other suggestions of the same note stay
                text, blocks = render.suggestion(new_id, render.similar_of(merging.describe(s, left)))
            else:
                text, blocks = render.kept_separate(new_id=new_id, other_id=other_id)
            _answer(s, body, team, text, blocks)

        await self.edge.write(save)
        await ack()

    async def undo_clicked(self, ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
        if (click := await self.edge.click(ack, body, context, _merge_id)) is None:
            return
        team, user, merge_id = click.team, click.user, click.value

        def save(s: Session) -> None:
            try:
                record, _ = merging.undo_merge(s, team_id=team, merge_id=merge_id, by=user,
                                               on_links_moved=self.on_links_moved)
            except ServiceError as e:
                _answer(s, body, team, *render.problem(str(e)), replace=False)
                return
            _answer(s, body, team, *render.unmerged(new_id=record.feedback_id, into_id=record.into_id))

        await self.edge.write(save)
        await ack()


def register(app: AsyncApp, edge: Edge, *, on_links_moved: merging.LinksMoved) -> None:
    on = MergeListeners(edge, on_links_moved=on_links_moved)
    app.action(Action.FEEDBACK_MERGE)(on.merge_clicked)
    app.action(Action.FEEDBACK_KEEP_SEPARATE)(on.keep_separate_clicked)
    app.action(Action.FEEDBACK_UNDO_MERGE)(on.undo_clicked)
