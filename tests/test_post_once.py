"""bot.queue.postonce against the fake Slack: adopt what an earlier attempt posted, never re-send blindly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from slack_sdk.errors import SlackApiError

from bot.core import clock
from bot.core.slack_client import SlackClients
from bot.devtools.fakeslack import BOT_USER_ID
from bot.queue.postonce import metadata, post_once
from tests.conftest import REP

TEXT = "Décision D-7 « IE11 » & <!channel> 🚀"


@pytest.fixture
def client(settings):
    return SlackClients(settings).for_team("T0001")  # the default client, with its retry handlers


def test_no_mark_posts_with_metadata_and_no_lookup(client, fake):
    p = post_once(client, channel="C0SALES", key_type="loopline_test", key="7", started=None, text=TEXT)
    assert not p.adopted and p.channel == "C0SALES"
    assert fake.message("C0SALES", p.ts)["metadata"] == metadata("loopline_test", "7")
    assert fake.call_count("conversations.history") == 0


def test_marked_attempt_adopts_the_earlier_copy(client, fake):
    started = clock.now() - timedelta(seconds=5)
    fake.add_message("C0SALES", "someone else", user=REP)
    ts = fake.add_message("C0SALES", TEXT, user=BOT_USER_ID, bot_id="B0BOT", metadata=metadata("loopline_test", "7"))
    fake.add_message("C0SALES", "another key", user=BOT_USER_ID, metadata=metadata("loopline_test", "8"))
    p = post_once(client, channel="C0SALES", key_type="loopline_test", key="7", started=started, text=TEXT)
    assert p.adopted and p.ts == ts and fake.call_count("chat.postMessage") == 0
    # A different key is not mistaken for it.
    q = post_once(client, channel="C0SALES", key_type="loopline_test", key="9", started=started, text=TEXT)
    assert not q.adopted and fake.call_count("chat.postMessage") == 1


def test_thread_reply_and_dm_lookups(client, fake):
    started = clock.now()
    parent = fake.add_message("C0ACME", "parent", user=REP)
    ts = fake.add_message("C0ACME", TEXT, user=BOT_USER_ID, thread_ts=parent, metadata=metadata("loopline_test", "r"))
    p = post_once(client, channel="C0ACME", key_type="loopline_test", key="r", started=started, thread_ts=parent,
                  text=TEXT)
    assert p.adopted and p.ts == ts
    first = post_once(client, channel=REP, key_type="loopline_test", key="dm", started=None, text=TEXT)
    again = post_once(client, channel=REP, key_type="loopline_test", key="dm", started=started, text=TEXT)
    assert again.adopted and again.ts == first.ts and again.channel == first.channel == fake.dm_channel(REP)
    assert len(fake.dms(REP)) == 1


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 503}, {"disconnect": True}])
def test_unknown_outcome_is_raised_not_resent(client, fake, fault):
    fake.fail_next("chat.postMessage", **fault)
    with pytest.raises((SlackApiError, OSError)) as e:
        post_once(client, channel="C0SALES", key_type="loopline_test", key="x", started=None, text=TEXT)
    assert isinstance(e.value, SlackApiError | OSError)
    assert fake.call_count("chat.postMessage") == 1  # the client's 5xx/connection retry handlers are bypassed


def test_rate_limited_post_is_retried_because_it_certainly_did_not_land(client, fake):
    fake.fail_next("chat.postMessage", retry_after=0)
    p = post_once(client, channel="C0SALES", key_type="loopline_test", key="y", started=None, text=TEXT)
    assert not p.adopted and fake.call_count("chat.postMessage") == 2 and len(fake.bot_messages("C0SALES")) == 1
