"""Who is who: auth.test, bots.info, users.info / users.list / users.lookupByEmail, team.info."""

from __future__ import annotations

import time
from typing import Any

from .common import APP_ID, Answer, Params, SlackError, flag, page
from .records import Identity
from .state import State


def user_obj(user: dict[str, Any], ident: Identity | None = None) -> dict[str, Any]:
    """A person as the Web API describes them (to ``ident``'s workspace, when given)."""
    profile = {
        "real_name": user["real_name"],
        "real_name_normalized": user["real_name"],
        "display_name": user["display_name"],
        "display_name_normalized": user["display_name"],
        "team": user["team_id"],
    }
    if user.get("email"):
        profile["email"] = user["email"]
    if user.get("bot_id"):
        profile["bot_id"] = user["bot_id"]
    tz = user["tz"]
    out: dict[str, Any] = {
        "id": user["id"],
        "team_id": user["team_id"],
        "name": user["name"],
        "deleted": user["deleted"],
        "real_name": user["real_name"],
        "tz": tz,
        "tz_label": tz,
        "tz_offset": user["tz_offset"],
        "is_admin": user["is_admin"],
        "is_owner": user["is_owner"],
        "is_primary_owner": user["is_primary_owner"],
        "is_restricted": user["is_restricted"],
        "is_ultra_restricted": False,
        "is_bot": user["is_bot"],
        "is_app_user": False,
        "updated": int(time.time()),
        "profile": profile,
    }
    if user.get("enterprise_id"):
        out["enterprise_user"] = {
            "id": user["id"],
            "enterprise_id": user["enterprise_id"],
            "enterprise_name": f"Org {user['enterprise_id']}",
            "is_admin": user["is_admin"],
            "is_owner": user["is_owner"],
            "is_primary_owner": user["is_primary_owner"],
            "teams": [user["team_id"]],
        }
    if ident is not None and user["team_id"] != ident.team_id:
        # Slack adds is_stranger to people of a foreign workspace party to a shared channel.
        out["is_stranger"] = bool(user.get("is_stranger"))
    return out


def auth_test(s: State, p: Params, ident: Identity) -> Answer:
    out = {
        "url": f"https://{ident.domain}.slack.com/",
        "team": ident.team_name,
        "user": s._users.get(ident.user_id, {}).get("name", "loopline"),
        "team_id": ident.team_id,
        "user_id": ident.user_id,
        "is_enterprise_install": False,
    }
    if ident.enterprise_id:
        out["enterprise_id"] = ident.enterprise_id
    if ident.bot_id:
        out["bot_id"] = ident.bot_id
    return out


def bots_info(s: State, p: Params, ident: Identity) -> Answer:
    return {
        "bot": {
            "id": p.get("bot") or ident.bot_id,
            "deleted": False,
            "name": "Loopline",
            "updated": int(time.time()),
            "app_id": APP_ID,
            "user_id": ident.user_id,
            "icons": {},
        }
    }


def info(s: State, p: Params, ident: Identity) -> Answer:
    user = s._users.get(str(p.get("user") or ""))
    if user is None:
        raise SlackError("user_not_found")
    out: dict[str, Any] = {"user": user_obj(user, ident)}
    if flag(p.get("include_locale")):
        out["user"]["locale"] = "en-US"
    return out


def list_(s: State, p: Params, ident: Identity) -> Answer:
    chunk, meta = page([user_obj(u) for u in s._users.values()], p, 200)
    return {"members": chunk, "cache_ts": int(time.time()), "response_metadata": meta}


def lookup_by_email(s: State, p: Params, ident: Identity) -> Answer:
    email = str(p.get("email") or "").lower()
    for user in s._users.values():
        if user.get("email") and user["email"].lower() == email:
            return {"user": user_obj(user)}
    raise SlackError("users_not_found")


def team_info(s: State, p: Params, ident: Identity) -> Answer:
    return {
        "team": {
            "id": p.get("team") or ident.team_id,
            "name": ident.team_name,
            "domain": ident.domain,
            "email_domain": "example.com",
            "url": f"https://{ident.domain}.slack.com/",
            "icon": {"image_default": True},
            "is_verified": False,
        }
    }
