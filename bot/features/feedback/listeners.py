"""/feedback, the capture shortcut, the feedback modal and its buttons.

Pattern for every listener here: parse, write what must not be lost in one group-committed
transaction, ack (the ack body is the private answer), and leave Web API calls to lazy listeners
(modals, which need the short-lived trigger_id) or to the worker (everything else).
"""

from __future__ import annotations

import json
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.orm import Session

from bot.core import channels as channel_svc
from bot.core.common import ServiceError, enqueue, queue_private
from bot.core.ids import feedback_ref
from bot.features.feedback import find_listeners, merging, render
from bot.features.feedback import service as fb_svc
from bot.slack.edge import Edge, team_of
from bot.slack.ids import Action, Callback
from bot.slack.render.connect import OUTSIDER_REFUSAL
from bot.slack.render.text import INPUT_TEXT_MAX, escape

FORMS = [
    ("/feedback TEXT", "capture TEXT as feedback now"),
    ("/feedback", "open the feedback form"),
    ("/feedback watch", "capture every new top-level message in this channel"),
    ("/feedback unwatch", "stop capturing this channel"),
    ("/feedback account NAME [ARR]", "map this channel to a customer account, e.g. /feedback account Acme Corp 120k"),
    ("/feedback search WORDS", "find feedback by meaning and words (only you see the results)"),
    ("/feedback customer NAME", "what one account asked for, with totals and open decisions (only you see it)"),
]
_FIND = re.compile(r"^(?P<verb>search|customer)(?:\s+(?P<rest>.*))?$", re.IGNORECASE | re.DOTALL)
_ACCOUNT = re.compile(r"^account(?:\s+(?P<rest>.*))?$", re.IGNORECASE | re.DOTALL)
_ARR_TAIL = re.compile(r"^(?P<name>.+?)\s+(?P<arr>\$?\d[\d,._]*(?:\.\d+)?\s*[kKmM]?)$")


def parse_feedback_command(text: str) -> tuple[str, dict[str, Any]]:
    """-> ("capture"|"modal"|"watch"|"unwatch"|"account"|"search"|"customer"|"help"|"usage", args)."""
    t = (text or "").strip()
    low = t.lower()
    if not t:
        return "modal", {}
    if low in ("watch", "unwatch", "help"):
        return low, {}
    found = _FIND.match(t)
    # Like "account": a subcommand only in its short form; "search is broken on mobile" stays feedback
    # when long, and the results offer "Capture as feedback instead" for the short ones.
    if found and len(t) <= 200 and "\n" not in t:
        verb, rest = found.group("verb").lower(), (found.group("rest") or "").strip().strip('"')
        if not rest:
            return "usage", {"problem": "Say what to search for." if verb == "search" else "Say which account."}
        return verb, {"words" if verb == "search" else "name": rest}
    m = _ACCOUNT.match(t)
    # "account" opens a subcommand only in its short form; a long sentence starting with the word is feedback.
    if m and len(t) <= 120 and "\n" not in t:
        rest = (m.group("rest") or "").strip().strip('"')
        if not rest:
            return "usage", {"problem": "Say which account this channel belongs to."}
        tail = _ARR_TAIL.match(rest)
        name, arr_text = (tail.group("name").strip().strip('"'), tail.group("arr")) if tail else (rest, None)
        try:
            arr = fb_svc.parse_arr(arr_text)
        except ServiceError as e:
            return "usage", {"problem": str(e)}
        return "account", {"name": name, "arr": arr}
    return "capture", {"text": t}


class FeedbackListeners:
    """The listeners, each a method small enough to read and test alone; `register` below wires them."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    # --- /feedback -----------------------------------------------------------------------------

    async def feedback_command(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
        action, args = parse_feedback_command(body.get("text", ""))
        if action == "capture":
            await ack(**await self.capture(body, context, args["text"]))
            return
        team, channel, user = await self.edge.workspace(body, context), body["channel_id"], body["user_id"]
        if self.edge.outside(body, context) is not False:
            await ack(**render.ephemeral(OUTSIDER_REFUSAL))
            return
        if action == "modal":
            await ack()
            self.edge.after_ack(self.open_feedback_modal(body, client))
            return
        if action == "help":
            await ack(**render.usage("/feedback", "Here is what /feedback can do.", FORMS))
            return
        if action == "usage":
            await ack(**render.usage("/feedback", args["problem"], FORMS))
            return
        if action in ("watch", "unwatch"):
            watched = action == "watch"

            def toggle(s: Session) -> bool:
                changed = channel_svc.set_watch(s, team_id=team, channel_id=channel, watched=watched, by=user,
                                                name=body.get("channel_name"))
                if watched:
                    enqueue(s, key=f"watch:{team}:{channel}:{body.get('trigger_id')}", kind="channel.watch",
                            team_id=team, payload={"channel": channel, "user": user,
                                                   "response_url": body.get("response_url")})
                return changed

            changed = await self.edge.write(toggle)
            if watched:
                msg = ("Watching this channel: each new top-level message is captured as feedback "
                       "(thread replies and bots are left out). `/feedback unwatch` stops it."
                       if changed else "This channel is already watched.")
            else:
                msg = "Stopped watching this channel." if changed else "This channel was not being watched."
            await ack(**render.ephemeral(msg))
            return
        if action in ("search", "customer"):
            await find_listeners.answer_command(self.edge, body, team, action, args)
            await ack()
            return
        # What is left is "account": "/feedback account page times out" is feedback, "/feedback account
        # Acme 120k" a mapping; text can't tell them apart, so the person chooses and nothing is lost or
        # remapped silently.
        await ack(**render.account_question(args["name"], args["arr"], body.get("text", "")))

    async def direct_feedback_command(self, body: dict[str, Any], context: Any) -> dict[str, Any] | None:
        """`/feedback TEXT` without Bolt's dispatch (bot/slack/commands.py): the ack's arguments, or None
        for every other form of the command, which `feedback_command` answers through Bolt."""
        action, args = parse_feedback_command(body.get("text", ""))
        return await self.capture(body, context, args["text"]) if action == "capture" else None

    async def capture(self, body: dict[str, Any], context: Any, text: str) -> dict[str, Any]:
        """`/feedback TEXT`: captured in one group-committed write; the ack is the private confirmation."""
        team, channel, user = await self.edge.workspace(body, context), body["channel_id"], body["user_id"]
        outsider = self.edge.outside(body, context) is not False
        new = await self.edge.writer.run(fb_svc.CommandText(team_id=team, channel=channel, user=user, text=text,
                                                            request_key=body.get("trigger_id") or text,
                                                            suggest=not outsider,
                                                            response_url=body.get("response_url")))
        fb = render.FeedbackSummary(id=new["id"], text=new["text"], kind=new.get("kind", "feedback"),
                                    votes=new["votes"], customer=new["customer"], arr=new["arr"], reporter=user)
        msg_text, blocks = render.capture_confirmation(fb, created=new["created"], outsider=outsider)
        return {"response_type": "ephemeral", "text": msg_text, "blocks": blocks}

    async def open_feedback_modal(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        team, channel = team_of(body), body["channel_id"]
        with self.edge.db.read_session() as s:
            mapped = channel_svc.get_channel(s, team_id=team, channel_id=channel)
            customer = mapped.customer if mapped else None
            arr = mapped.customer_arr if mapped else None
        view = render.feedback_modal(metadata={"channel": channel, "source": "modal"}, customer=customer, arr=arr,
                                     reporter=body.get("user_id"))
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    # --- message shortcut ----------------------------------------------------------------------

    async def open_shortcut_modal(self, body: dict[str, Any], client: AsyncWebClient, context: Any, respond: Any) -> None:
        if await self.edge.turned_away_after_ack(body, context, client, respond):
            return
        team, channel = team_of(body), body["channel"]["id"]
        message = body.get("message") or {}
        ts = message.get("ts") or body.get("message_ts")
        thread_ts = message.get("thread_ts")
        domain = (body.get("team") or {}).get("domain")
        # The permalink format is documented; computing it saves a Web API call inside the trigger's
        # 3-second life. The worker replaces it with chat.getPermalink's answer after the capture.
        permalink = None
        if domain and ts:
            permalink = f"https://{domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
            if thread_ts and thread_ts != ts:
                permalink += f"?thread_ts={thread_ts}&cid={channel}"
        with self.edge.db.read_session() as s:
            existing = fb_svc.find_by_message(s, team_id=team, channel=channel, ts=ts) if ts else None
            mapped = channel_svc.get_channel(s, team_id=team, channel_id=channel)
            customer = (existing.customer if existing else None) or (mapped.customer if mapped else None)
            arr = (existing.arr if existing else None) or (mapped.customer_arr if mapped else None)
            area = existing.area if existing else None
            kind = existing.kind if existing else "feedback"
            text = existing.text if existing else message.get("text", "")
        view = render.feedback_modal(
            metadata={"channel": channel, "ts": ts, "thread_ts": thread_ts, "permalink": permalink,
                      "reporter": message.get("user") or message.get("bot_id"), "source": "shortcut"},
            text=text, reporter=message.get("user"), permalink=permalink, customer=customer, arr=arr, area=area,
            kind=kind)
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    # --- "Add details" -------------------------------------------------------------------------

    async def open_details_modal(self, body: dict[str, Any], client: AsyncWebClient, context: Any,
                                 respond: AsyncRespond) -> None:
        if await self.edge.turned_away_after_ack(body, context, client, respond):
            return
        fid = int(body["actions"][0]["value"])
        with self.edge.db.read_session() as s:
            item = fb_svc.get_feedback(s, fid, team_id=team_of(body))
            if item is None:
                await respond(response_type="ephemeral", replace_original=False,
                              text=f"{feedback_ref(fid)} doesn't exist in this workspace.")
                return
            view = render.feedback_modal(
                metadata={"feedback_id": item.id, "channel": (body.get("channel") or {}).get("id") or item.channel},
                text=item.text, customer=item.customer, arr=item.arr, area=item.area, kind=item.kind,
                reporter=item.reporter, permalink=item.permalink, title=f"Details of {feedback_ref(item.id)}")
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    # --- modal submission ----------------------------------------------------------------------

    async def feedback_submitted(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: Any) -> None:
        if (sub := await self.edge.form(ack, body, view, context, errors_in="fb_text")) is None:
            return
        team, user, meta = sub.team, sub.user, sub.meta
        fields = render.read_feedback_modal(view["state"]["values"])
        try:
            arr = fb_svc.parse_arr(fields["arr"])
        except ServiceError as e:
            await ack(response_action="errors", errors={"fb_arr": str(e)})
            return
        if not fields["text"].strip():
            await ack(response_action="errors", errors={"fb_text": "Say what the customer asked for."})
            return
        channel = meta.get("channel")

        def save(s: Session) -> None:
            if meta.get("feedback_id"):
                current = fb_svc.get_feedback(s, int(meta["feedback_id"]), team_id=team)
                # The form shows at most 3,000 characters; an untouched prefill must not clip a longer text.
                untouched = current is not None and fields["text"] == current.text[:INPUT_TEXT_MAX]
                item = fb_svc.update_details(s, team_id=team, feedback_id=int(meta["feedback_id"]),
                                             text=None if untouched else fields["text"],
                                             customer=fields["customer"] or "", area=fields["area"] or "",
                                             kind=fields["kind"], arr=arr)
                note_text, note_blocks = render.details_saved(render.summary_of(item))
                created = False
            else:
                ts = meta.get("ts")
                key = fb_svc.message_key(team, channel, ts) if ts and channel else f"view:{team}:{view['id']}"
                item, created = fb_svc.capture_feedback(
                    s, team_id=team, source=meta.get("source") or "modal", source_key=key, text=fields["text"],
                    channel=channel, ts=ts, thread_ts=meta.get("thread_ts"), permalink=meta.get("permalink"),
                    reporter=meta.get("reporter") or user, captured_by=user, kind=fields["kind"],
                    area=fields["area"], customer=fields["customer"], arr=arr)
                if not created:  # an existing item (e.g. captured by reaction): the form adds the details
                    fb_svc.update_details(s, team_id=team, feedback_id=item.id, customer=fields["customer"],
                                          area=fields["area"], kind=fields["kind"], arr=arr)
                note_text, note_blocks = render.capture_confirmation(render.summary_of(item), created=created,
                                                                     new_vote=not created)
                if ts and channel:
                    enqueue(s, key=f"enrich:{item.id}", kind="feedback.enrich", team_id=team,
                            payload={"feedback_id": item.id, "channel": channel, "ts": ts})
            queue_private(s, key=f"note:{view['id']}:{view.get('hash', '')}", team_id=team, user=user,
                          text=note_text, blocks=note_blocks, channel=channel)
            if created:
                merging.queue_suggestion(s, team_id=team, feedback_id=item.id, user=user, channel=channel)

        await self.edge.submit(ack, save, errors_in="fb_text")

    # --- the "account or feedback?" question -------------------------------------------------

    async def map_account(self, ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
        team, user = await self.edge.workspace(body, context), body["user"]["id"]
        if await self.edge.refuse_if_outside(body, context):
            await ack()
            return
        channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id"))
        choice = json.loads(body["actions"][0]["value"])
        arr = f" ({render.money(choice['arr'])} ARR)" if choice.get("arr") else ""
        text = f":office: This channel now maps to the account *{escape(choice['name'])}*{arr}. " \
               "Feedback captured here gets it filled in."

        def save(s: Session) -> None:
            channel_svc.set_account(s, team_id=team, channel_id=channel, customer=choice["name"], arr=choice.get("arr"))
            enqueue(s, key=f"account:{body['actions'][0].get('action_ts')}:{user}", kind="notify.respond",
                    team_id=team, payload={"response_url": body.get("response_url"), "user": user,
                                           "replace_original": True, "text": text.replace("*", ""),
                                           "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]})

        await self.edge.write(save)
        await ack()

    async def capture_instead(self, ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
        team, user = await self.edge.workspace(body, context), body["user"]["id"]
        if await self.edge.refuse_if_outside(body, context):
            await ack()
            return
        channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id"))
        action = body["actions"][0]
        new = await self.edge.writer.run(fb_svc.CommandText(team_id=team, channel=channel, user=user,
                                                            text=action["value"],
                                                            request_key=f"q:{action.get('action_ts')}:{user}"))
        fb = render.FeedbackSummary(id=new["id"], text=new["text"], kind="feedback", votes=new["votes"],
                                    customer=new["customer"], arr=new["arr"], reporter=user)
        msg_text, blocks = render.capture_confirmation(fb, created=new["created"])

        def reply(s: Session) -> None:
            enqueue(s, key=f"instead:{action.get('action_ts')}:{user}", kind="notify.respond", team_id=team,
                    payload={"response_url": body.get("response_url"), "user": user, "replace_original": True,
                             "text": msg_text, "blocks": blocks})

        await self.edge.write(reply)
        await ack()


def register(app: AsyncApp, edge: Edge) -> None:
    on = FeedbackListeners(edge)
    app.command("/feedback")(on.feedback_command)
    app.shortcut(Callback.FEEDBACK_SHORTCUT)(edge.ack_then(on.open_shortcut_modal))
    app.action(Action.FEEDBACK_DETAILS)(edge.ack_then(on.open_details_modal))
    app.view(Callback.FEEDBACK_MODAL)(on.feedback_submitted)
    app.action(Action.FEEDBACK_ACCOUNT_CONFIRM)(on.map_account)
    app.action(Action.FEEDBACK_CAPTURE_INSTEAD)(on.capture_instead)
