"""A fake Slack Web API over real HTTP, for the tests and `loopline demo`: ``FakeSlack().start()``.

Point a client at it with ``WebClient(token="xoxb-test", base_url=fake.base_url)``. Requests are
parsed the way Slack does (JSON bodies for chat.* / views.*, form bodies and query strings for the
rest), state changes as Slack's would, and every call is logged for assertions. Faults (429 with
Retry-After, 5xx, permanent errors, dropped connections), latency and Slack-like rate limits can be
switched on at any time from the test thread.

Where things are:
    api.py            the dispatch table (Web API method -> handler), auth, the order of checks
    chat.py, conversations.py, reactions.py, users.py, views.py, files.py, oauth.py
                      the handlers, one module per API family; webhooks.py: response_url POSTs
    state.py          what the fake remembers, and the lookups handlers share
    seeding.py        add_user / add_channel / add_message ... from the test side
    faults.py         fail_next, rate limits (429 + Retry-After), latency
    queries.py        calls, calls_to, wait_for, messages, bot_messages, replies, dms, views ...
    server.py         the threaded HTTP server, start/stop, routing
    blockkit.py       Block Kit limits, applied to every message and view received
"""

from .common import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    DEFAULT_SCOPES,
    TEAM_ID,
    SlackError,
    default_oauth_response,
)
from .fake import FakeSlack
from .records import Call, Fault, Identity, WebhookPost

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
