"""Builds the Bolt AsyncApp: verification, authorisation, listeners, one error handler."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse

import bot.slack.compat  # noqa: F401  (fixes Bolt's body parser before any request)
from bot.core.logging import bind
from bot.core.slack_client import make_async_web_client
from bot.slack import events
from bot.slack.edge import Edge, team_of
from bot.slack.manifest import BOT_SCOPES

log = logging.getLogger(__name__)


def fixed_authorization(token: str, identity: dict[str, Any]) -> AuthorizeResult:
    """A single-workspace install's authorisation: its bot token and auth.test's answer (read once)."""
    return AuthorizeResult(enterprise_id=identity.get("enterprise_id"), team_id=identity.get("team_id"), bot_token=token,
                           bot_id=identity.get("bot_id"), bot_user_id=identity.get("user_id"))


def answer_error(error: Exception, body: dict[str, Any]) -> BoltResponse | None:
    """The app's one error handler (Bolt's, and the direct commands' in bot/slack/commands.py): logs the
    failure with a reference and tells the person where they are, privately, with that reference."""
    ref = uuid.uuid4().hex[:8]
    # Context is bound here rather than in a middleware: a Bolt middleware on every request
    # costs more than the inbox write itself, and listeners that succeed log nothing.
    event = body.get("event") or {}
    with bind(team=team_of(body), event_id=body.get("event_id"),
              channel=body.get("channel_id") or event.get("channel") or (body.get("channel") or {}).get("id"),
              user=body.get("user_id") or event.get("user") or (body.get("user") or {}).get("id")):
        log.error("listener failed (ref %s): %r", ref, error, exc_info=error)
    message = f":warning: Something went wrong on our side (reference `{ref}`); please try again."
    if body.get("type") == "view_submission":
        # Keep the modal open with the reason next to its first input, so nothing typed is lost.
        blocks = (body.get("view") or {}).get("blocks") or []
        first_input = next((b.get("block_id") for b in blocks if b.get("type") == "input"), None)
        if first_input:
            return BoltResponse(status=200, headers={"content-type": "application/json"},
                                body=json.dumps({"response_action": "errors",
                                                 "errors": {first_input: f"Something went wrong (ref {ref}); try again."}}))
    if body.get("command") or body.get("response_url"):
        return BoltResponse(status=200, headers={"content-type": "application/json"},
                            body=json.dumps({"response_type": "ephemeral", "text": message}))
    return None


def build_app(edge: Edge, *, listeners: Sequence[Callable[[AsyncApp, Edge], None]],
              bot_identity: dict[str, Any] | None = None, oauth_stores: tuple[Any, Any] | None = None,
              request_verification: bool = True, metrics: Any = None) -> AsyncApp:
    """`listeners`: each feature's registration (bot/composition.py lists them); the Events API inbox
    (bot/slack/events.py) is always registered first. `metrics`: counts the Web API calls (bot/metrics.py).
    `bot_identity` is auth.test's answer for the single-workspace token (fetched once at start-up).
    `request_verification=False` only where the signature was checked before (bot/server.py)."""
    settings = edge.settings
    signing_secret = settings.secret("slack_signing_secret") or ""
    # Listeners run before the HTTP response: they only write to the database (group-committed,
    # ~1 ms) and leave network work to the worker (or, for views.open, to Edge.ack_then). See README "Design" (AsyncApp on uvicorn).
    common: dict[str, Any] = {"signing_secret": signing_secret, "process_before_response": True,
                              "request_verification_enabled": request_verification, "ignoring_self_events_enabled": True}
    if oauth_stores is not None:
        # lazy: only multi-workspace installs load OAuth and its cipher
        from bot.slack.oauth import AsyncInstallationStoreAdapter, AsyncStateStoreAdapter, StoredBotAuthorize

        installs, states = oauth_stores
        app = AsyncApp(
            **common,
            client=make_async_web_client(settings, None, metrics=metrics),
            installation_store=AsyncInstallationStoreAdapter(installs),
            authorize=StoredBotAuthorize(installs, edge.db),  # type: ignore[arg-type]  # Bolt accepts AsyncAuthorize
            oauth_settings=AsyncOAuthSettings(
                client_id=settings.slack_client_id or "",
                client_secret=settings.secret("slack_client_secret") or "",
                scopes=BOT_SCOPES,
                installation_store=AsyncInstallationStoreAdapter(installs),
                state_store=AsyncStateStoreAdapter(states),
            ),
        )
    else:
        token = settings.secret("slack_bot_token") or ""
        fixed = fixed_authorization(token, bot_identity or {})

        async def authorize(**_: Any) -> AuthorizeResult:
            # A fixed answer: Bolt's default would call auth.test on the first request, inside its ack.
            return fixed

        app = AsyncApp(**common, client=make_async_web_client(settings, token, metrics=metrics),
                       authorize=authorize)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse | None:
        return answer_error(error, body)

    events.register(app, edge)
    for register in listeners:
        register(app, edge)
    return app
