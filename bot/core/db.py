"""Engine and session handling. One place decides how we talk to SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from bot.core.settings import ConfigError

# Shipped inside the package (pyproject.toml maps the top-level migrations/ folder to bot.migrations): an
# installed wheel finds its migrations in site-packages, an editable install finds the repository's folder.
MIGRATIONS_DIR = files("bot.migrations")
SUPPORTED_DATABASES = ("Loopline supports a SQLite file (sqlite:///./loopline.db) "
                       "and PostgreSQL (postgresql://user@host:5432/db)")


def supported_url(url: str) -> str:
    """DATABASE_URL -> the URL we hand SQLAlchemy, or one clear ConfigError.

    Checked before create_engine: another backend fails deep inside it (mysql:// is a
    ModuleNotFoundError for a driver we don't ship), and an in-memory SQLite database starts and
    answers health checks while each pooled connection sees its own empty database, so every write
    fails. Messages never repeat the URL: it may hold a password.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; plain postgresql:// would look for psycopg2.
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"DATABASE_URL is malformed; {SUPPORTED_DATABASES}") from None
    if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise ConfigError(f"DATABASE_URL uses {parsed.drivername}://, which Loopline can't use; {SUPPORTED_DATABASES}")
    database = parsed.database or ""
    if parsed.drivername.startswith("sqlite") and (
            database in ("", ":memory:") or database.startswith("file::memory:")
            or parsed.query.get("mode") == "memory"):
        raise ConfigError("DATABASE_URL is an in-memory SQLite database, which each connection sees empty and "
                          f"which is gone at exit; {SUPPORTED_DATABASES}")
    return url


def make_engine(url: str, **kw: Any) -> Engine:
    url = supported_url(url)
    if url.startswith("sqlite"):
        kw.setdefault("connect_args", {"check_same_thread": False, "timeout": 30,
                                       "factory": _writers_in_turn(threading.Lock())})
        engine = create_engine(url, **kw)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _rec: Any) -> None:
            # Python's sqlite3 opens transactions lazily and never for SELECT; take control so that
            # BEGIN IMMEDIATE serialises writers instead of failing with "database is locked" mid-way.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL is durable against process crashes
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Long reads (digests, exports) must not hold the write lock the edge needs for its acks.
            if conn.get_execution_options().get("loopline_readonly"):
                conn.exec_driver_sql("BEGIN")
                return
            dbapi_conn = conn.connection.dbapi_connection
            turn = getattr(dbapi_conn, "take_turn", None)  # absent when connect_args gave another factory
            if turn is not None:
                turn()
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                if turn is not None:
                    dbapi_conn.end_turn()
                raise

        return engine
    kw.setdefault("pool_pre_ping", True)
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 20)
    return create_engine(url, **kw)


def _writers_in_turn(writers: threading.Lock) -> type[sqlite3.Connection]:
    """sqlite3 connections whose write transactions take turns on a lock of this process.

    SQLite has one write lock, and a writer that finds it taken sleeps and retries (the busy handler:
    1, 2, 5 … 100 ms between tries), so after a short write by the worker the edge's next commit could
    sleep tens of milliseconds with the lock already free (acks' p99 at 170-600 ms under bench/ack.py,
    py-spy showing both waiting in BEGIN IMMEDIATE). Writers of one process instead wait on this lock,
    handed over the moment a transaction ends; another process (`loopline import` beside `serve`) still
    meets SQLite's own lock and busy handler."""

    class WritersInTurn(sqlite3.Connection):
        holds = False

        def take_turn(self) -> None:
            if not writers.acquire(timeout=30):  # SQLite's own busy timeout (connect_args)
                raise sqlite3.OperationalError("database is locked (another writer of this process held it 30 s)")
            self.holds = True

        def end_turn(self) -> None:
            if self.holds:
                self.holds = False
                writers.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self.end_turn()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self.end_turn()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self.end_turn()

    return WritersInTurn


def is_unavailable(e: BaseException) -> bool:
    """The database refused or dropped us (restart, full disk, lock timeout, read-only): not the fault
    of the statement, and worth retrying later."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    return isinstance(e, OperationalError | InterfaceError) or (isinstance(e, DBAPIError) and e.connection_invalidated)


def is_postgres(engine_or_session: Engine | Session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "postgresql"


class Database:
    """An engine plus its session factory; passed explicitly, never a module global."""

    def __init__(self, url: str, **kw: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **kw)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(loopline_readonly=True), expire_on_commit=False
        )
        self.is_postgres = is_postgres(self.engine)
        # The group-commit writer's own pool on PostgreSQL, without the ping before each checkout: it
        # checks a connection out for every batch, and the ping was a quarter of the writer's time under
        # load (py-spy, bench/ack.py). A connection that died fails its batch, whose units are then
        # replayed one by one on fresh connections (bot/core/groupcommit.py) before anything is acked.
        self._write_engine = (make_engine(url, **{**kw, "pool_pre_ping": False, "pool_size": 2, "max_overflow": 2})
                              if self.is_postgres else self.engine)
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on error."""
        with self.sessions() as s, s.begin():
            yield s

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """session() for the group-commit writer (bot/core/groupcommit.py), on its own pool."""
        with self._write_sessions() as s, s.begin():
            yield s

    @contextmanager
    def autocommit_write(self) -> Iterator[Session]:
        """A session on the writer's pool without a transaction of its own: each statement commits as it
        runs. Only for a caller whose writes are one statement (bot/core/groupcommit.py)."""
        with self._write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c, Session(bind=c) as s:
            yield s

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A transaction for reading only (on SQLite it does not take the write lock)."""
        with self._read_sessions() as s, s.begin():
            yield s

    def ping(self) -> bool:
        try:
            # Read-only: on SQLite a plain transaction would BEGIN IMMEDIATE and wait for the write lock.
            with self.engine.execution_options(loopline_readonly=True).connect() as c:
                c.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def upgrade(self) -> None:
        from sqlalchemy.exc import OperationalError

        try:
            upgrade(self.engine)
        except OperationalError as e:
            reason = str(e.orig).strip().splitlines()[0] if e.orig else type(e).__name__
            raise ConfigError(f"DATABASE_URL: cannot use the database ({reason})") from None

    def dispose(self) -> None:
        self.engine.dispose()
        if self._write_engine is not self.engine:
            self._write_engine.dispose()


class PointReader:
    """One-row reads on the ack path, over a dedicated autocommit DBAPI connection.

    Checking a connection out of SQLAlchemy's pool and wrapping the SELECT in BEGIN/ROLLBACK cost
    ~0.3 ms on SQLite; the indexed read itself ~10 µs. The edge runs on one event-loop thread, so one
    connection serves it; after any error the connection is dropped and reopened on the next read.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self._conn: Any = None
        self._sql: dict[Any, tuple[str, tuple[str, ...] | None]] = {}

    def scalar(self, stmt: Any, values: dict[str, Any]) -> Any:
        """`stmt`'s first column of its first row (None if no row); `values` binds its parameters by name."""
        sql, order = self._sql.get(stmt) or self._compile(stmt)
        args = tuple(values[k] for k in order) if order is not None else values
        try:
            if self._conn is None:
                self._conn = self.engine.raw_connection()
                if self.engine.dialect.name == "postgresql":
                    self._conn.driver_connection.autocommit = True  # no transaction left open between reads
            cur = self._conn.cursor()
            try:
                cur.execute(sql, args)
                row = cur.fetchone()
            finally:
                cur.close()
        except Exception:
            self.close()
            raise
        return row[0] if row else None

    def _compile(self, stmt: Any) -> tuple[str, tuple[str, ...] | None]:
        compiled = stmt.compile(dialect=self.engine.dialect)
        self._sql[stmt] = (str(compiled), tuple(compiled.positiontup or ()) if compiled.positional else None)
        return self._sql[stmt]

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()  # not back to the pool: its autocommit mode is ours


def alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# Any fixed number: the key of the PostgreSQL advisory lock that lets one process at a time migrate.
MIGRATION_LOCK = 0x4C4F4F50  # "LOOP"


def upgrade(engine: Engine) -> None:
    """Alembic `upgrade head` on this engine (used at start-up and by `loopline migrate`).

    Replicas started together on an empty database would all create the same tables and all but one
    die on a duplicate; on PostgreSQL they take turns (a transaction-scoped advisory lock, released at
    commit), and the ones after the first find the schema at head. SQLite's BEGIN IMMEDIATE (see
    make_engine) already makes them take turns.
    """
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
