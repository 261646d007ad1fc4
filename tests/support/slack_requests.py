"""Signed Slack requests for the tests (shared with `loopline demo`)."""

from bot.devtools.slack_requests import SlackSender, select_value, text_value

__all__ = ["SlackSender", "select_value", "text_value"]
