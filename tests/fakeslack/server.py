from bot.devtools.fakeslack.server import *  # noqa: F403
