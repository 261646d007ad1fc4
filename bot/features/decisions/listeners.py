"""/decision, the decision modal, status buttons on the card, linking feedback, and "Reply in thread".

Same pattern as feedback: parse, write in one group-committed transaction (with the jobs that will
talk to Slack), ack. Only views.open runs right after the ack (Edge.ack_then), because of the
trigger_id's short life.
Permission checks that need users.info happen in the worker, after the ack.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.orm import Session

from bot.core.common import ServiceError, enqueue, queue_private
from bot.core.ids import feedback_ref
from bot.features.decisions import render
from bot.features.decisions import service as svc
from bot.slack.edge import Edge, team_of
from bot.slack.ids import Action, Callback
from bot.slack.render.replies import usage

FORMS = [("/decision TITLE", "log a decision, its title filled in"), ("/decision", "open the decision form")]
_STATUS_ACTION = re.compile(rf"^{Action.DECISION_STATUS}:(?P<status>[a-z_]+)$")


def _channel_of(body: dict[str, Any]) -> str | None:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")


class DecisionListeners:
    """The listeners, each a method small enough to read and test alone; `register` below wires them."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    # --- /decision -----------------------------------------------------------------------------

    async def decision_command(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                               context: AsyncBoltContext, respond: AsyncRespond) -> None:
        if (body.get("text") or "").strip().lower() == "help":
            await ack(**usage("/decision", "Here is what /decision can do.", FORMS))
            return
        await ack()
        self.edge.after_ack(self.open_decision_modal(body, client, context, respond))

    async def open_decision_modal(self, body: dict[str, Any], client: AsyncWebClient, context: Any,
                                  respond: AsyncRespond) -> None:
        view = render.decision_modal(metadata={"channel": body.get("channel_id")}, title=body.get("text") or "",
                                     author=body.get("user_id"))
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    async def decision_submitted(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: Any) -> None:
        if (sub := await self.edge.form(ack, body, view, context, errors_in=render.B_TITLE)) is None:
            return
        team, user, meta = sub.team, sub.user, sub.meta
        f = render.read_decision_modal(view["state"]["values"])
        errors: dict[str, str] = {}
        if not f["title"]:
            errors[render.B_TITLE] = "Give the decision a title."
        due: date | None = None
        if f["due"]:
            try:
                due = date.fromisoformat(f["due"])
            except ValueError:
                errors[render.B_DUE] = "Pick a date."
        try:
            status = svc.normalise_status(f["status"])
        except ServiceError as e:
            errors[render.B_STATUS] = str(e)
            status = "proposed"
        with self.edge.db.read_session() as s:
            fids, problems = svc.resolve_feedback_ids(s, team_id=team, text=f["feedback"])
        if problems:
            errors[render.B_FEEDBACK] = "; ".join(problems)[:300]
        if errors:
            await ack(response_action="errors", errors=errors)
            return

        def save(s: Session) -> None:
            svc.create_decision(s, team_id=team, source_key=f"view:{team}:{view['id']}", title=f["title"],
                                context=f["context"], status=status, owner=f["owner"] or user, due=due,
                                area=f["area"] or None, feedback_ids=fids, created_by=user,
                                channel=meta.get("channel"))

        await self.edge.submit(ack, save, errors_in=render.B_TITLE)

    # --- status buttons ------------------------------------------------------------------------

    async def status_clicked(self, ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
        # The card sits in the channel, where people of another organisation may press its buttons.
        if await self.edge.refuse_if_outside(body, context):
            await ack()
            return
        action = body["actions"][0]
        if action.get("type") == "overflow" or action.get("action_id") == Action.DECISION_OVERFLOW:
            raw = (action.get("selected_option") or {}).get("value") or ""
            did_text, _, status = raw.partition(":")
        else:
            m = _STATUS_ACTION.match(action.get("action_id", ""))
            status, did_text = (m.group("status") if m else ""), action.get("value") or ""
        if not did_text.isdigit() or status not in svc.STATUSES:
            await ack()
            return
        team, user, did = await self.edge.workspace(body, context), body["user"]["id"], int(did_text)
        key = svc.request_key(str(action.get("action_ts") or body.get("trigger_id")), user, did)

        def record(s: Session) -> None:
            svc.request_status_change(s, team_id=team, decision_id=did, status=status, user=user, key=key,
                                      channel=_channel_of(body))

        await self.edge.write(record)
        await ack()

    # --- linking from the feedback side --------------------------------------------------------

    async def open_link_modal(self, body: dict[str, Any], client: AsyncWebClient, context: Any,
                              respond: AsyncRespond) -> None:
        if await self.edge.turned_away_after_ack(body, context, client, respond):
            return
        value = body["actions"][0].get("value") or ""
        if not value.isdigit():
            return
        team = team_of(body)
        with self.edge.db.read_session() as s:
            if svc.missing_feedback(s, team_id=team, ids=[int(value)]):
                await respond(response_type="ephemeral", replace_original=False,
                              text=f"{feedback_ref(value)} doesn't exist in this workspace.")
                return
            choices = [(d.id, d.title, d.status) for d in svc.latest_decisions(s, team_id=team, limit=100)]
        view = render.link_modal(feedback_id=int(value), choices=choices,
                                 metadata={"feedback_id": int(value), "channel": _channel_of(body)})
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    async def link_submitted(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: Any) -> None:
        if (sub := await self.edge.form(ack, body, view, context, errors_in=render.B_TYPED)) is None:
            return
        team, user, meta = sub.team, sub.user, sub.meta
        fid = int(meta.get("feedback_id") or 0)
        wanted = render.read_link_modal(view["state"]["values"])
        if not wanted:
            await ack(response_action="errors", errors={render.B_TYPED: "Pick a decision or type its id, e.g. D-3."})
            return
        with self.edge.db.read_session() as s:
            d = svc.find_decision(s, team_id=team, text=wanted)
            did = d.id if d else None
        if did is None:
            await ack(response_action="errors", errors={render.B_TYPED: f"{wanted[:20]} is not a decision here."})
            return
        channel = meta.get("channel")

        def link(s: Session) -> None:
            added = svc.link_feedback(s, team_id=team, decision_id=did, feedback_id=fid, by=user)
            dec = svc.get_decision(s, did, team_id=team)
            assert dec is not None
            text, blocks = render.linked(fid, render.summary_of(dec), added=added)
            key = f"linked:{view['id']}:{view.get('hash', '')}"
            queue_private(s, key=key, team_id=team, user=user, text=text, blocks=blocks, channel=channel)

        await self.edge.submit(ack, link, errors_in=render.B_TYPED)

    # --- closing the loop: the person chose to reply where the feedback was given --------------

    async def loop_reply(self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        nid_text, _, fid_text = (body["actions"][0].get("value") or "").partition(":")
        if not (nid_text.isdigit() and fid_text.isdigit()):
            await ack()
            return
        team, user = await self.edge.workspace(body, context), body["user"]["id"]
        container = body.get("container") or {}

        def record(s: Session) -> None:
            # One reply per item per notification, however many times the button is pressed.
            enqueue(s, key=f"loop.reply:{nid_text}:{fid_text}", kind="loop.reply", team_id=team,
                    payload={"notification_id": int(nid_text), "feedback_id": int(fid_text), "user": user,
                             "dm_channel": container.get("channel_id") or _channel_of(body),
                             "dm_ts": container.get("message_ts")})

        await self.edge.write(record)
        await ack()


def register(app: AsyncApp, edge: Edge) -> None:
    on = DecisionListeners(edge)
    app.command("/decision")(on.decision_command)
    app.view(Callback.DECISION_MODAL)(on.decision_submitted)
    app.action(re.compile(rf"^{Action.DECISION_STATUS}:"))(on.status_clicked)
    app.action(Action.DECISION_OVERFLOW)(on.status_clicked)
    app.action(Action.FEEDBACK_LINK_DECISION)(edge.ack_then(on.open_link_modal))
    app.view(Callback.LINK_DECISION_MODAL)(on.link_submitted)
    app.action(Action.LOOP_REPLY)(on.loop_reply)
