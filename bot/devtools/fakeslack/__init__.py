"""A fake Slack Web API over real HTTP, for the tests and `loopline demo`: ``FakeSlack().start()``; see server.py."""

from .server import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    DEFAULT_SCOPES,
    TEAM_ID,
    Call,
    FakeSlack,
    Fault,
    Identity,
    SlackError,
    WebhookPost,
    default_oauth_response,
)

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_SCOPES",
    "TEAM_ID",
    "Call",
    "FakeSlack",
    "Fault",
    "Identity",
    "SlackError",
    "WebhookPost",
    "default_oauth_response",
]
