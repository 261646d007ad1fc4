"""Text clean-up shared by the embedders and the keyphrase namer.

Feedback arrives as Slack mrkdwn: user/channel mentions, links, `:emoji:` codes
and HTML-escaped `& < >`. None of that says what the feedback is *about*, and
left in, mentions and link targets become the "most distinctive" terms of a
cluster (one customer's CSM pasting the same link into every report), so it
is stripped before both embedding and naming.
"""

from __future__ import annotations

import html
import re

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

# <@U123>, <@U123|bob>, <!here>, <!subteam^S1|@team>: who was pinged, not the topic.
_MENTION = re.compile(r"<[@!][^>]*>")
# <#C123|general>: keep the channel name, it is sometimes the topic ("#billing").
_CHANNEL = re.compile(r"<#[A-Z0-9]+\|([^>]*)>")
# <https://x|label> keeps the label; <https://x> and bare URLs are dropped
# (their path segments are noise such as ticket ids).
_LINK_LABEL = re.compile(r"<(?:https?|mailto):[^>|]*\|([^>]*)>")
_LINK = re.compile(r"<(?:https?|mailto):[^>]*>|https?://\S+")
# :white_check_mark: / :+1::skin-tone-2: are reactions, not content.
_EMOJI_CODE = re.compile(r":[a-z0-9_+\-]+:")
_SPACES = re.compile(r"\s+")


def _words(block: str) -> list[str]:
    return block.split()


# Words that are frequent in any product feedback channel and so never name a
# theme. Kept short and generic on purpose: anything domain specific
# ("invoice", "export") must stay, because that is what themes are made of.
_CHATTER = _words(
    """
    hi hey hello thanks thank thx pls plz please just really like get got getting
    im ive dont doesnt didnt cant wont isnt would could also still know think want
    need needs way use using used lol ok okay yes customer customers issue issues
    problem problems feedback request asked asking says said able day today
    yesterday week time times thing things lot bit make sure let going does did
    doing tell wanna gonna kinda
    """
)
# Dates say when, never what: "since Tuesday", "the March invoice".
_DATES = _words(
    """
    monday tuesday wednesday thursday friday saturday sunday january february march
    april may june july august september october november december tomorrow tonight
    morning
    """
)
FEEDBACK_STOP_WORDS: frozenset[str] = frozenset(_CHATTER + _DATES)
STOP_WORDS: frozenset[str] = frozenset(ENGLISH_STOP_WORDS) | FEEDBACK_STOP_WORDS

# Tokens of 2+ word characters with at least one letter ("2fa", "s3", "ios")
# but not bare numbers or ordinals ("4471", "18th"): ids, amounts and dates.
TOKEN_PATTERN = r"(?u)\b(?!\d+(?:st|nd|rd|th)\b)(?=\w*[^\W\d_])\w\w+\b"


def clean_text(text: str) -> str:
    """Slack mrkdwn -> plain text fit for embedding and term counting.

    Idempotent, never raises; unicode (accents, CJK, emoji characters) is kept
    because the embedders cope with it and it can carry meaning.
    """
    if not text:
        return ""
    t = _MENTION.sub(" ", text)
    t = _CHANNEL.sub(r" \1 ", t)
    t = _LINK_LABEL.sub(r" \1 ", t)
    t = _LINK.sub(" ", t)
    # Slack escapes &, <, > as entities; unescape after the <...> markup is gone
    # so a literal "a < b" in the text is not mistaken for markup.
    t = html.unescape(t)
    t = _EMOJI_CODE.sub(" ", t)
    return _SPACES.sub(" ", t).strip()
