"""Real faults for the durability tests: a constraint that fails at COMMIT, a held write lock, and a
TCP proxy between the app and PostgreSQL that can drop every connection and refuse new ones."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

from sqlalchemy import make_url, text

from bot.core.db import Database, is_postgres

POISON_TABLE = "fault_poison"


@contextlib.contextmanager
def commit_time_fk_violation(db: Database, *, job_key_like: str, feedback_text_like: str) -> Iterator[None]:
    """Make inserts of matching jobs / feedback rows violate a foreign key that is checked only at COMMIT.

    A trigger copies each matching row into a table whose foreign key is DEFERRABLE INITIALLY DEFERRED
    and points nowhere: every statement succeeds, the commit fails (SQLite and PostgreSQL alike).
    """
    pg = is_postgres(db.engine)
    with db.engine.begin() as c:
        ref = "integer" if pg else "INTEGER"
        c.execute(text(f"CREATE TABLE {POISON_TABLE} (feedback_id {ref} NOT NULL "
                       "REFERENCES feedback(id) DEFERRABLE INITIALLY DEFERRED)"))
        if pg:
            c.execute(text(f"CREATE FUNCTION {POISON_TABLE}_fn() RETURNS trigger LANGUAGE plpgsql AS $$ "
                           f"BEGIN INSERT INTO {POISON_TABLE} VALUES (-1); RETURN NULL; END $$"))
            c.execute(text(f"CREATE TRIGGER {POISON_TABLE}_jobs AFTER INSERT ON jobs FOR EACH ROW "
                           f"WHEN (NEW.key LIKE '{job_key_like}') EXECUTE FUNCTION {POISON_TABLE}_fn()"))
            c.execute(text(f"CREATE TRIGGER {POISON_TABLE}_feedback AFTER INSERT ON feedback FOR EACH ROW "
                           f"WHEN (NEW.text LIKE '{feedback_text_like}') EXECUTE FUNCTION {POISON_TABLE}_fn()"))
        else:
            c.execute(text(f"CREATE TRIGGER {POISON_TABLE}_jobs AFTER INSERT ON jobs "
                           f"WHEN NEW.key LIKE '{job_key_like}' "
                           f"BEGIN INSERT INTO {POISON_TABLE} VALUES (-1); END"))
            c.execute(text(f"CREATE TRIGGER {POISON_TABLE}_feedback AFTER INSERT ON feedback "
                           f"WHEN NEW.text LIKE '{feedback_text_like}' "
                           f"BEGIN INSERT INTO {POISON_TABLE} VALUES (-1); END"))
    try:
        yield
    finally:
        clear_poison(db)


def clear_poison(db: Database) -> None:
    pg = is_postgres(db.engine)
    with db.engine.begin() as c:
        c.execute(text(f"DROP TABLE IF EXISTS {POISON_TABLE}" + (" CASCADE" if pg else "")))
        if pg:
            c.execute(text(f"DROP FUNCTION IF EXISTS {POISON_TABLE}_fn() CASCADE"))
        else:
            c.execute(text(f"DROP TRIGGER IF EXISTS {POISON_TABLE}_jobs"))
            c.execute(text(f"DROP TRIGGER IF EXISTS {POISON_TABLE}_feedback"))


@contextlib.contextmanager
def write_lock_held(db: Database) -> Iterator[None]:
    """Another session holds the lock every inbox write needs (as a long migration or a stuck
    transaction would): SQLite's database write lock, PostgreSQL's lock on `jobs` and `feedback`."""
    with db.engine.connect() as c:
        if is_postgres(db.engine):
            c.execute(text("LOCK TABLE jobs, feedback IN EXCLUSIVE MODE"))
        else:
            c.execute(text("SELECT 1"))  # bot/core/db.py begins every writing transaction IMMEDIATE
        try:
            yield
        finally:
            c.rollback()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a server. `outage()` drops every open connection and refuses new
    ones (nothing listens) until it ends: what clients see while PostgreSQL restarts."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._stalled = False
        self._held: list[socket.socket] = []
        self.listen()

    @classmethod
    def before(cls, db_url: str) -> tuple[TcpProxy, str]:
        """A proxy in front of the PostgreSQL at `db_url`, and the URL of the same database through it."""
        url = make_url(db_url)
        proxy = cls((url.host or "127.0.0.1", url.port or 5432))
        return proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)

    def listen(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed: refusing
            if listener is not self._listener:  # accepted as it was being cut
                client.close()
                return
            if self._stalled:
                self._held.append(client)  # accepted, never answered
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._conns.difference_update((src, dst))

    def cut(self) -> None:
        """Stop listening and reset every forwarded connection."""
        if self._listener is not None:
            # close() alone doesn't wake a thread blocked in accept(): the socket would go on accepting
            # one more connection, which then worked right through the "outage". shutdown() does.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def stall(self) -> None:
        """A server that hangs: reset every forwarded connection, then accept new ones and never answer."""
        self._stalled = True
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def outage(self, seconds: float) -> None:
        self.cut()
        time.sleep(seconds)
        self.listen()

    def close(self) -> None:
        self.cut()
        for s in self._held:
            s.close()
