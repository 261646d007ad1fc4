"""What Loopline tells people outside the installing organisation, and about shared channels (pure).

Nothing here names an account, an amount, another channel or another person's feedback: these texts go
to people of another organisation, or into channels they read. See docs/slack-connect.md.
"""

from __future__ import annotations

from typing import Any

from bot.slack.render import blocks as bk

OUTSIDER_REFUSAL = "Only people of the workspace that runs Loopline can do this."
NOT_KNOWN_YET = "Loopline is checking which organisation you belong to; please try again in a minute."
DIGEST_REFUSAL = ("This channel is shared with another organisation, and a digest summarises the whole "
                  "workspace's feedback: it is not posted here. Run /digest in an internal channel.")
SCHEDULE_STOPPED = ("The digest scheduled in {channel} is stopped: the channel is now shared with another "
                    "organisation, and a digest summarises the whole workspace's feedback. "
                    "Schedule it again in an internal channel.")
HIDDEN_IN_SHARED = ("Linked feedback is not shown in channels shared with other organisations; "
                    "see it in Loopline's Home tab.")


def home_for_outsider() -> dict[str, Any]:
    """App Home for someone outside the organisation: what Loopline is, and nothing of the data."""
    return {"type": "home", "blocks": [
        bk.header("Loopline"),
        bk.section("Loopline collects product feedback for the team that installed it. "
                   "Its details are only shown to people of that team's workspace."),
    ]}
