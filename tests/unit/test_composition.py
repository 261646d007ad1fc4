"""The wiring point (bot/composition.py): what runs is what it lists, and nothing is switched on by
importing a module. Cross-feature contracts are arguments, so they cannot be silently missing."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import bot
from bot import composition
from bot.core.slack_client import SlackClients
from bot.features.feedback.feature import feature as feedback_feature
from bot.queue.core import Worker
from bot.runtime import Runtime

BOT = Path(bot.__file__).parent
# Job kinds written somewhere in bot/ (enqueue(..., kind="x") and job rows). The group committer's
# health probe is written and deleted in one transaction: no worker ever sees it.
NEVER_CLAIMED = {"healthz.probe"}


def queued_kinds() -> set[str]:
    kinds: set[str] = set()
    for path in BOT.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for call in re.finditer(r"\b(?:enqueue|job_row|queue_private)\((.*?)\)\n", text, re.S):
            kinds.update(re.findall(r'\bkind="([a-z_.]+)"', call.group(1)))
    return kinds - NEVER_CLAIMED


def test_composition_lists_the_product_features():
    names = [f.name for f in composition.build_features()]
    assert len(names) == len(set(names))
    assert set(composition.PRODUCT_FEATURES) <= set(names)
    assert {"feedback", "announcements", "decisions", "digests", "home"} <= set(names)


def test_a_worker_built_from_the_composition_has_every_job_kinds_handler(db, settings):
    kinds = queued_kinds()
    assert {"event", "notify.dm", "decision.post", "subscriptions.subscribe", "home.publish"} <= kinds
    worker = Worker(db, SlackClients(settings, None, db), settings,
                    jobs=composition.worker_jobs(composition.build_features()))
    assert kinds - set(worker.jobs.handlers) == set()
    assert set(worker.jobs.handlers) - kinds == set()  # and no handler for work nobody queues


def test_importing_every_module_switches_nothing_on(db, settings):
    for mod in pkgutil.walk_packages(bot.__path__, "bot."):
        if mod.name.startswith(("bot.migrations", "bot.prompts")) or mod.name == "bot.__main__":
            continue
        importlib.import_module(mod.name)
    # A worker given no jobs has none, whatever was imported; a runtime runs only the features it is given.
    assert Worker(db, SlackClients(settings, None, db), settings).jobs.handlers == {}
    rt = Runtime(settings, features=[feedback_feature(on_links_moved=lambda *_: None)])
    try:
        assert set(rt.worker.jobs.handlers) == {"event", "feedback.fetch", "feedback.enrich", "channel.watch",
                                                "feedback.similar", "feedback.search", "feedback.customer"}
        assert rt.exporters().keys() == {"feedback"}
        assert {p.job_id for p in rt.periodic} == {"prune-jobs"}
    finally:
        rt.stop()


def test_announcement_listeners_cannot_be_registered_without_the_decision_check():
    """The modal's decision ids used to be checked only if decisions had been imported first."""
    from bot.features.announcements import listeners

    param = inspect.signature(listeners.register).parameters["validate_decision_ids"]
    assert param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is inspect.Parameter.empty
