"""The fake Slack Web API used by the tests (it lives in bot/devtools so that `loopline demo` can use it too)."""

from bot.devtools.fakeslack import *  # noqa: F403
from bot.devtools.fakeslack import __all__  # noqa: F401
