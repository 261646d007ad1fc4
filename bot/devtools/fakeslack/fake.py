"""FakeSlack: the parts put together. The Web API itself is api.WEB_API and the handlers it names."""

from __future__ import annotations

from .faults import FaultInjection
from .queries import Queries
from .seeding import Seeding
from .server import Serving


class FakeSlack(Seeding, FaultInjection, Queries, Serving):
    """A stateful stand-in for slack.com/api, listening on 127.0.0.1 (ephemeral port by default).

    Seeding (seeding.py) sets the scene, fail_next and the rate/latency knobs (faults.py) make it
    misbehave, the queries (queries.py) read what the app did; start()/stop() serve it (server.py).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._add_bot_user()

    def reset(self) -> None:
        """Forget everything (calls, faults, knobs, users, channels, messages) but keep serving."""
        with self._lock:
            self._init_state()
            self._add_bot_user()
