"""/announce, the announcement modal, and the Edit / Retract / Cancel / Got it buttons.

Who may announce is known only from users.info (is_admin/is_owner/is_primary_owner), which can't be
called before the ack; the lazy listener checks it and only then opens the modal. A submission can't
be trusted to say who opened the form (its private_metadata is whatever the client sends), so the
lazy listener records a grant for that person and that very view (its external_id) in the database,
and the submission is accepted only with one: a database read, no Web API call before the ack.
LOOPLINE_ANNOUNCERS is re-checked directly, it costs nothing.

Announcement ids come from buttons and forms: every lookup is made inside the request's workspace.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.common import ServiceError, enqueue, parse_public_ids
from bot.features import DecisionIdsValidator
from bot.features.announcements import render
from bot.features.announcements import service as an_svc
from bot.features.subscriptions import service as sub_svc
from bot.slack.edge import Edge, team_of
from bot.slack.ids import Action, Block, Callback

# A picked time this far in the past is still "now": the picker has minute precision.
PAST_GRACE = timedelta(seconds=90)


def _respond_job(s: Session, *, key: str, team: str, user: str, url: str | None, text: str,
                 blocks: list[dict[str, Any]] | None, replace: bool) -> None:
    enqueue(s, key=key, kind="notify.respond", team_id=team,
            payload={"response_url": url, "user": user, "text": text, "blocks": blocks, "replace_original": replace})


def register(app: AsyncApp, edge: Edge, *, validate_decision_ids: DecisionIdsValidator) -> None:
    """`validate_decision_ids`: the decision ids typed into the modal must exist (decisions provide it,
    bot/composition.py passes it)."""
    settings = edge.settings

    async def ack_only(ack: AsyncAck) -> None:
        await ack()

    async def may_announce(client: AsyncWebClient, user: str) -> bool:
        if user in settings.announcers:
            return True
        try:
            info = (await client.users_info(user=user)).get("user") or {}
        except SlackApiError:  # can't tell: refuse (the refusal says who can)
            return False
        return an_svc.may_announce(info, user, settings.announcers)

    async def open_announce_modal(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        team, user = team_of(body), body["user_id"]
        if not await may_announce(client, user):
            await respond(response_type="ephemeral", text=render.refusal(settings.announcers))
            return
        with edge.db.read_session() as s:
            areas = [(a.name, a.label) for a in sub_svc.known_areas(s, team_id=team)]
        if not areas:
            await respond(response_type="ephemeral", text=render.no_areas())
            return
        view_key = uuid.uuid4().hex
        await edge.write(lambda s: an_svc.grant_announce(s, team_id=team, user_id=user, view_key=view_key))
        view = render.announce_modal(areas, private_metadata={"channel": body.get("channel_id")})
        view["external_id"] = view_key  # Slack echoes it in the submission; the grant above names it
        try:
            await client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as e:
            # The trigger lives 3 seconds; when Slack was slow to answer users.info it has expired.
            # Say so instead of leaving the person with nothing.
            await respond(response_type="ephemeral",
                          text=f"Slack was too slow to open the form (`{e.response.get('error')}`); please run "
                               "/announce again.")

    app.command("/announce")(ack=ack_only, lazy=[open_announce_modal])

    # --- the modal -----------------------------------------------------------------------------------------

    def check_decisions(team: str, text: str) -> tuple[list[int], str | None]:
        if not text:
            return [], None
        ids, bad = parse_public_ids(text, "D")
        if bad:
            return [], f"Not decision ids: {', '.join(bad[:5])}. Use the form D-3, D-7."
        with edge.db.read_session() as s:
            problems = validate_decision_ids(s, team, ids)
        if problems:
            return [], "; ".join(problems)[:1900]
        return ids, None

    async def announce_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext) -> None:
        team, user = await edge.workspace(body, context), body["user"]["id"]
        meta = json.loads(view.get("private_metadata") or "{}")
        fields = render.read_modal(view["state"]["values"])
        now = clock.now()
        errors: dict[str, str] = {}
        if not fields["title"]:
            errors[Block.AN_TITLE] = "Give the announcement a title."
        if not meta.get("edit") and not fields["areas"]:
            errors[Block.AN_AREAS] = "Choose at least one product area."
        send_at = datetime.fromtimestamp(fields["send_at"], UTC) if fields["send_at"] else None
        if send_at is not None and send_at < now - PAST_GRACE:
            errors[Block.AN_SEND_AT] = "That time is in the past. Pick a later one, or leave it empty to send now."
        decision_ids, problem = check_decisions(team, fields["decisions"])
        if problem:
            errors[Block.AN_DECISIONS] = problem
        if errors:
            await ack(response_action="errors", errors=errors)
            return

        if meta.get("edit"):  # the service checks the author, inside this workspace
            aid = int(meta["edit"])

            def save_edit(s: Session) -> None:
                ann = an_svc.edit_announcement(s, team_id=team, announcement_id=aid, by=user, title=fields["title"],
                                               body=fields["body"], send_at=send_at, announcers=settings.announcers)
                v = render.view_of(ann)
                _text, blocks = render.confirmation(v, scheduled=ann.status == "scheduled")
                note = (f"Saved. {len([d for d in ann.deliveries if d.status == 'sent'])} posted copies are being "
                        "updated." if ann.status != "scheduled" else "Saved; it will go out with the new text.")
                enqueue(s, key=f"an-edited:{aid}:{ann.version}", kind="notify.dm", team_id=team,
                        payload={"user": user, "text": f"{v.public_id} edited. {note}", "blocks": blocks})

            try:
                await edge.write(save_edit)
            except ServiceError as e:
                await ack(response_action="errors", errors={Block.AN_TITLE: str(e)[:150]})
                return
            await ack()
            return

        if user not in settings.announcers:
            with edge.db.read_session() as s:
                allowed = an_svc.may_submit_announcement(s, team_id=team, user_id=user, view_key=view.get("external_id"))
            if not allowed:
                await ack(response_action="errors",
                          errors={Block.AN_TITLE: render.refusal(settings.announcers)[:150]})
                return

        def create(s: Session) -> an_svc.Created:
            created = an_svc.create_announcement(
                s, team_id=team, source_key=f"view:{team}:{view['id']}", title=fields["title"], body=fields["body"],
                areas=fields["areas"], author=user, send_at=send_at, decision_ids=decision_ids,
                confirm_channel=meta.get("channel"), now=now)
            if created.created:
                ann = an_svc.get(s, created.id, team_id=team)
                assert ann is not None
                text, blocks = render.confirmation(render.view_of(ann), scheduled=created.scheduled)
                enqueue(s, key=f"an-confirm:{created.id}", kind="notify.dm", team_id=team,
                        payload={"user": user, "text": text, "blocks": blocks})
            return created

        try:
            await edge.write(create)
        except ServiceError as e:
            await ack(response_action="errors", errors={Block.AN_AREAS: str(e)[:150]})
            return
        await ack()

    app.view(Callback.ANNOUNCE_MODAL)(announce_submitted)

    # --- buttons in the author's confirmation ----------------------------------------------------------

    async def open_edit_modal(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        team, user = team_of(body), body["user"]["id"]
        aid = int(body["actions"][0]["value"])
        with edge.db.read_session() as s:
            ann = an_svc.get(s, aid, team_id=team)
            if ann is None:
                await respond(response_type="ephemeral", replace_original=False,
                              text=f"AN-{aid} doesn't exist in this workspace.")
                return
            if ann.author != user and user not in settings.announcers:
                await respond(response_type="ephemeral", replace_original=False,
                              text="Only the author of an announcement can edit it.")
                return
            if ann.status in ("retracted", "cancelled"):
                await respond(response_type="ephemeral", replace_original=False,
                              text=f"{ann.public_id} was {ann.status}; it can't be edited.")
                return
            view = render.announce_modal([], private_metadata={"edit": aid}, title=ann.title,
                                         body=ann.body, chosen=list(ann.areas or []), send_at=ann.send_at,
                                         edit=True, allow_send_at=ann.status == "scheduled")
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    app.action(Action.ANNOUNCE_EDIT)(ack=ack_only, lazy=[open_edit_modal])

    def manage(kind: str) -> Any:
        async def handle(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
            team, user = await edge.workspace(body, context), body["user"]["id"]
            aid = int(body["actions"][0]["value"])
            url = body.get("response_url")
            key = f"an-{kind}:{aid}:{body['actions'][0].get('action_ts', '')}"

            def apply(s: Session) -> None:
                if kind == "retract":
                    ann = an_svc.retract_announcement(s, team_id=team, announcement_id=aid, by=user,
                                                      announcers=settings.announcers)
                else:
                    ann = an_svc.cancel_announcement(s, team_id=team, announcement_id=aid, by=user,
                                                     announcers=settings.announcers)
                text, blocks = render.confirmation(render.view_of(ann), scheduled=False)
                _respond_job(s, key=key, team=team, user=user, url=url, text=text, blocks=blocks, replace=True)

            try:
                await edge.write(apply)
            except ServiceError as e:
                # That transaction rolled back; say why in a second one (block actions' ack bodies are ignored).
                msg = str(e)
                await edge.write(lambda s: _respond_job(s, key=key + ":refused", team=team, user=user, url=url,
                                                        text=msg, blocks=None, replace=False))
            await ack()

        return handle

    app.action(Action.ANNOUNCE_RETRACT)(manage("retract"))
    app.action(Action.ANNOUNCE_CANCEL)(manage("cancel"))

    # --- "Got it" on each copy -------------------------------------------------------------------------

    async def got_it(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        team, user = await edge.workspace(body, context), body["user"]["id"]
        aid = int(body["actions"][0]["value"])
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""

        def record(s: Session) -> None:
            if an_svc.record_ack(s, team_id=team, announcement_id=aid, channel=channel, user=user) and channel:
                enqueue(s, key=f"an-ack:{aid}:{user}", kind="notify.ephemeral", team_id=team,
                        payload={"channel": channel, "user": user, "fallback_dm": False,
                                 "text": f"Thanks, noted that you have read AN-{aid}."})

        await edge.write(record)
        await ack()

    app.action(Action.ANNOUNCE_ACK)(got_it)
