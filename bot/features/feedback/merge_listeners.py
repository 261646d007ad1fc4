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


def register(app: AsyncApp, edge: Edge, *, on_links_moved: merging.LinksMoved) -> None:
    async def on_merge(ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
        team, user = await edge.workspace(body, context), user_of(body)
        if await edge.refuse_if_outside(body, context):
            await ack()
            return
        action = body["actions"][0]
        try:
            new_id, into_id, _ = render.read_value(action.get("value") or "")
        except (ValueError, KeyError, TypeError):
            await ack()
            return

        def save(s: Session) -> None:
            try:
                record, _ = merging.merge(s, team_id=team, feedback_id=new_id, into_id=into_id, by=user,
                                          request_key=f"{action.get('action_ts')}:{user}:{new_id}",
                                          on_links_moved=on_links_moved)
            except ServiceError as e:
                _answer(s, body, team, *render.problem(str(e)), replace=False)
                return
            [into] = render.similar_of(merging.describe(s, [record.into_id]))
            item = s.get(Feedback, record.feedback_id)
            text, blocks = render.merged(merge_id=record.id, new_id=record.feedback_id, into=into,
                                         text=item.text if item else "")
            _answer(s, body, team, text, blocks)

        await edge.write(save)
        await ack()

    async def on_keep_separate(ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
        team, user = await edge.workspace(body, context), user_of(body)
        if await edge.refuse_if_outside(body, context):
            await ack()
            return
        action = body["actions"][0]
        try:
            new_id, other_id, offered = render.read_value(action.get("value") or "")
        except (ValueError, KeyError, TypeError):
            await ack()
            return

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

        await edge.write(save)
        await ack()

    async def on_undo(ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
        team, user = await edge.workspace(body, context), user_of(body)
        if await edge.refuse_if_outside(body, context):
            await ack()
            return
        try:
            merge_id = int(json.loads(body["actions"][0].get("value") or "null"))
        except (ValueError, TypeError):
            await ack()
            return

        def save(s: Session) -> None:
            try:
                record, _ = merging.undo_merge(s, team_id=team, merge_id=merge_id, by=user,
                                               on_links_moved=on_links_moved)
            except ServiceError as e:
                _answer(s, body, team, *render.problem(str(e)), replace=False)
                return
            _answer(s, body, team, *render.unmerged(new_id=record.feedback_id, into_id=record.into_id))

        await edge.write(save)
        await ack()

    app.action(Action.FEEDBACK_MERGE)(on_merge)
    app.action(Action.FEEDBACK_KEEP_SEPARATE)(on_keep_separate)
    app.action(Action.FEEDBACK_UNDO_MERGE)(on_undo)
