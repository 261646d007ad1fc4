"""App Home as a person opens it."""

from __future__ import annotations

import json
import time
from typing import Any


def open_home(slack: Any, fake: Any, user: str) -> dict[str, Any]:
    before = len(fake.calls_to("views.publish"))
    r = slack.event({"type": "app_home_opened", "user": user, "channel": "D0HOME" + user[-3:], "tab": "home",
                     "event_ts": f"{time.time():.6f}"})
    assert r.status_code == 200
    fake.wait_for("views.publish", count=before + 1, timeout=10)
    view = fake.home_view(user)
    assert view is not None and view["type"] == "home"
    return view


def blocks_text(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)
