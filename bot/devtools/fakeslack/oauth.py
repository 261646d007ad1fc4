"""Installing and connecting: oauth.v2.access (and the legacy oauth.access) exchanging a code for
the canned FakeSlack.oauth_response, whose token then works against the fake; and
apps.connections.open, the Socket Mode handshake an app-level token makes."""

from __future__ import annotations

import json
import uuid

from .common import APP_ID, BOT_USER_ID, DEFAULT_SCOPES, TEAM_ID, TEAM_NAME, Answer, Params, SlackError
from .records import Identity
from .state import State


def v2_access(s: State, p: Params, ident: Identity) -> Answer:
    auth = str(p.get("_authorization") or "")  # api.py passes the Authorization header of no-auth methods
    if not auth.lower().startswith("basic ") and not p.get("client_id"):
        raise SlackError("invalid_client_id")
    code = str(p.get("code") or "")
    if not code or code.startswith(("bad", "invalid", "expired")):
        raise SlackError("invalid_code")
    resp = json.loads(json.dumps(s.oauth_response))
    resp.pop("ok", None)
    token = resp.get("access_token")
    team = resp.get("team") or {}
    if token and token not in s._tokens:
        bot_user = resp.get("bot_user_id") or BOT_USER_ID
        s._tokens[token] = Identity(
            team_id=team.get("id", TEAM_ID),
            team_name=team.get("name", TEAM_NAME),
            user_id=bot_user,
            bot_id="B" + bot_user[1:],
            scopes=resp.get("scope", DEFAULT_SCOPES),
        )
    return resp


def connections_open(s: State, p: Params, ident: Identity) -> Answer:
    if s.socket_mode_url:  # a test's own WebSocket server standing in for wss://wss.slack.com
        return {"url": f"{s.socket_mode_url}?ticket={uuid.uuid4()}&app_id={APP_ID}"}
    return {"url": f"ws://{s._host}:{s.port}/link/?ticket={uuid.uuid4()}&app_id={APP_ID}"}
