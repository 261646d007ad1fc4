from bot.devtools.fakeslack.blockkit import *  # noqa: F403
