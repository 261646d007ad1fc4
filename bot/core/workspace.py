"""Which workspace a command-line operation is about, when the person didn't say."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.core.db import Database
from bot.core.models import Feedback
from bot.core.settings import ConfigError, Settings
from bot.core.slack_client import make_web_client

LOCAL_TEAM = "T_LOCAL"  # no Slack configured and nothing stored yet (demo, offline imports)


def resolve_team(settings: Settings, db: Database, explicit: str | None) -> str:
    """--team if given; else the bot token's workspace (auth.test); else the only one stored."""
    if explicit:
        return explicit
    token = settings.secret("slack_bot_token")
    if token:
        from slack_sdk.errors import SlackApiError


        try:
            return str(make_web_client(settings, token).auth_test()["team_id"])
        except (SlackApiError, OSError) as e:
            raise ConfigError(f"SLACK_BOT_TOKEN could not be checked with Slack ({e}); pass --team") from None
    with db.read_session() as s:
        teams = list(s.scalars(select(Feedback.team_id).group_by(Feedback.team_id).order_by(func.count().desc())))
    if len(teams) > 1:
        raise ConfigError(f"several workspaces in the database ({', '.join(teams[:5])}); pass --team")
    return teams[0] if teams else LOCAL_TEAM
