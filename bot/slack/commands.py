"""Slash commands answered without Bolt's dispatch, for a single-workspace install.

`/feedback TEXT` is the command people type all day; its whole handling is one group-committed write
and an ack whose body is the private confirmation. Bolt's request object, context, middleware chain,
listener matching and argument injection cost more CPU than that write (py-spy under bench/ack.py,
README "Measured on this machine", *Acks*). A feature hands the composition root a `DirectCommand`
for such a case: it answers with the ack's arguments, or with None to leave the request, untouched, to
its Bolt listener (every other form of the command, and anything it doesn't recognise).

What the direct path keeps of Bolt: its form-body parser (bot/slack/compat.py), its ack (the response
body is built by Bolt's own `AsyncAck`), the install's fixed authorisation as the listener's context, and
the app's error handler (`answer_error`) when the command fails. Signatures are checked before either
path (bot/server.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.response import BoltResponse

from bot.slack.app import answer_error
from bot.slack.compat import parse_body

FORM = "application/x-www-form-urlencoded"
# Given the parsed command and the install's context: the ack's arguments, or None to leave the request
# to the command's Bolt listener.
DirectCommand = Callable[[dict[str, Any], Any], Awaitable[dict[str, Any] | None]]


class DirectCommands:
    def __init__(self, auth: AuthorizeResult, handlers: Mapping[str, DirectCommand]):
        self.auth, self.handlers = auth, dict(handlers)

    def take(self, body: bytes, content_type: str) -> dict[str, Any] | None:
        """The parsed command when a direct handler exists for it, else None (Bolt will see it)."""
        if not self.handlers or not content_type.startswith(FORM) or body.startswith(b"{"):
            return None
        try:
            parsed = parse_body(body.decode(), content_type)
        except ValueError:  # not UTF-8, or a "payload" that isn't JSON: Bolt's path answers it
            return None
        # Slack's SSL check (ssl_check=1, no command) is answered by Bolt's middleware.
        if not isinstance(parsed, dict) or parsed.get("ssl_check") or parsed.get("command") not in self.handlers:
            return None
        return parsed

    async def handle(self, body: dict[str, Any]) -> BoltResponse | None:
        """Bolt's response for this command, or None when its handler leaves it to Bolt."""
        context = AsyncBoltContext(authorize_result=self.auth)
        try:
            answer = await self.handlers[body["command"]](body, context)
        except Exception as e:
            return answer_error(e, body)
        if answer is None:
            return None
        ack = AsyncAck()
        return await ack(**answer)
