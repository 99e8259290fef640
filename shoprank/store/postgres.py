"""The shared store: every shop of a deployment in one PostgreSQL database, reached through a connection pool.

Several processes (API replicas, ingestion, a trainer) use one database at once. Each batch is one
transaction: it is committed before the call returns, or rolled back whole; a connection lost mid-batch raises
:class:`StoreUnavailableError` and leaves nothing of the batch behind. Large batches travel with ``COPY``.

The catalogue's change feed (``products_changed_since``) is ordered by a per-shop counter in ``shops``: every
product write takes that row's lock for its whole transaction, so versions are handed out in commit order and a
reader that saw version ``v`` has seen every write up to ``v``.
"""

from __future__ import annotations

import atexit
import json
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shoprank.data.records import Event, Judgment, Product
from shoprank.store.base import Store, StoreError, StoreFullError, StoreUnavailableError, WriteResult
from shoprank.store.factory import Backend
from shoprank.store.postgres_records import ShopRecords
from shoprank.store.postgres_schema import SCHEMA_VERSION, SHOP_TABLES, migrate

POOL_SIZE = 16
"""Connections one process keeps at most (one per concurrent request that touches the store)."""
CONNECT_TIMEOUT_S = 5
CHECK_IDLE_S = 1.0
"""A pooled connection idle this long is checked (one round trip) before use: after a server restart the idle
ones are the dead ones. A connection in steady use is not, and one that breaks mid-call raises as usual."""
POOL_WAIT_S = 10.0
COPY_FROM = 500
"""Batches of this many rows or more are sent with COPY into a staging table; smaller ones as arrays."""

_EVENT_COLUMNS = 'event_id, user_id, item_id, type, "timestamp", query, "position", session_id, value'
_EVENT_TYPES = ("text", "text", "text", "text", "float8", "text", "int4", "text", "float8")
_EVENT_SELECT = ('e.event_id, e.user_id, e.item_id, e.type, e."timestamp", e.query, e."position", e.session_id, '
                 "e.value, r.request_id FROM events e LEFT JOIN event_requests r "
                 "ON r.shop = e.shop AND r.event_id = e.event_id")
"""An event as stored, with the impression it was attributed to (if it was)."""


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _driver() -> tuple[Any, Any]:
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:
        raise StoreError(
            f"the PostgreSQL store needs psycopg 3 and psycopg_pool ({exc}); install them with "
            "'pip install \"psycopg[binary]\" psycopg-pool' or use the embedded store (leave --store unset)"
        ) from None
    return psycopg, psycopg_pool


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Database:
    """One PostgreSQL database: its pool, opened once per process and shared by every store on it."""

    def __init__(self, url: str) -> None:
        psycopg, psycopg_pool = _driver()
        self.url = url
        self.where = redact(url)
        try:  # one direct connection first: its error says what is wrong (host, port, password, database)
            with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                migrate(conn, self.where)
        except psycopg.ProgrammingError as exc:
            raise StoreUnavailableError(
                f"the store URL {self.where} is not valid ({_first_line(exc)}); "
                "expected postgresql://user:password@host:5432/database"
            ) from None
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"cannot reach the PostgreSQL store at {self.where}: {_first_line(exc)}. Check the URL "
                "(--store or $SHOPRANK_STORE) and that the server is running"
            ) from None
        self.pool = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=POOL_SIZE, timeout=POOL_WAIT_S, open=False, name="shoprank",
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            check=self._check_if_idle,
        )
        self._last_used: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self.pool.open(wait=True, timeout=POOL_WAIT_S)

    @contextmanager
    def connection(self, action: str) -> Iterator[Any]:
        """A pooled connection; driver errors become the store's errors, naming ``action``."""
        psycopg, psycopg_pool = _driver()
        try:
            with self.pool.connection() as conn:
                try:
                    yield conn
                finally:
                    self._last_used[conn] = time.monotonic()
        except StoreError:
            raise
        except psycopg.errors.DiskFull as exc:
            raise StoreFullError(28, f"the PostgreSQL server's disk is full; nothing of this {action} was stored "
                                     f"({_first_line(exc)})") from exc
        except (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout) as exc:
            raise StoreUnavailableError(
                f"the PostgreSQL store at {self.where} failed during {action} ({_first_line(exc)}); "
                "nothing of it was stored. Retry: a batch is applied whole or not at all, and a retried event "
                "is stored once"
            ) from exc

    def _check_if_idle(self, conn: Any) -> None:
        if time.monotonic() - self._last_used.get(conn, 0.0) >= CHECK_IDLE_S:
            _driver()[1].ConnectionPool.check_connection(conn)

    def close(self) -> None:
        self.pool.close()


_DATABASES: dict[str, Database] = {}
_DATABASES_LOCK = threading.Lock()


def database(url: str) -> Database:
    """The process's :class:`Database` for ``url`` (opened, migrated on first use)."""
    with _DATABASES_LOCK:
        db = _DATABASES.get(url)
        if db is None:
            db = _DATABASES[url] = Database(url)
        return db


def close_database(url: str) -> None:
    """Close the process's pool on ``url`` (tests that drop their database; exit)."""
    with _DATABASES_LOCK:
        db = _DATABASES.pop(url, None)
    if db is not None:
        db.close()


@atexit.register
def _close_all() -> None:
    for url in list(_DATABASES):
        close_database(url)


class PostgresBackend(Backend):
    """Every shop of a deployment in one PostgreSQL database."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def db(self) -> Database:
        return database(self.url)

    def open(self, shop: str, *, create: bool = True) -> Store:
        if create:
            with self.db.connection("creating the shop") as conn:
                conn.execute("INSERT INTO shops (name, created_at) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                             (shop, time.time()))
        return PostgresStore(self.db, shop)

    def exists(self, shop: str) -> bool:
        with self.db.connection("reading the shops") as conn:
            return conn.execute("SELECT 1 FROM shops WHERE name = %s", (shop,)).fetchone() is not None

    def shop_names(self) -> list[str]:
        with self.db.connection("reading the shops") as conn:
            return [r[0] for r in conn.execute("SELECT name FROM shops ORDER BY name")]

    def drop(self, shop: str) -> None:
        with self.db.connection("dropping the shop") as conn, conn.transaction():
            for table in SHOP_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE shop = %s", (shop,))
            conn.execute("DELETE FROM shops WHERE name = %s", (shop,))

    def describe(self) -> str:
        return f"the PostgreSQL store at {redact(self.url)}"

    def key_records(self) -> Any:
        from shoprank.store.postgres_keys import PostgresKeyRecords

        return PostgresKeyRecords(self.db)


class PostgresStore(ShopRecords, Store):
    """One shop's records in a shared PostgreSQL database. Safe to share between threads."""

    def __init__(self, db: Database, shop: str) -> None:
        self.db = db
        self.shop = shop

    # plumbing ----------------------------------------------------------------------------
    @contextmanager
    def _write(self, action: str) -> Iterator[Any]:
        """One transaction on one connection: committed when the block ends, rolled back on any error."""
        with self.db.connection(action) as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def _read(self, action: str) -> Any:
        return self.db.connection(action)

    def _next_version(self, cur: Any) -> int:
        row = cur.execute("UPDATE shops SET catalog_version = catalog_version + 1 WHERE name = %s "
                          "RETURNING catalog_version", (self.shop,)).fetchone()
        if row is None:
            raise StoreError(f"shop {self.shop!r} is not in {redact(self.db.url)} (dropped meanwhile?)")
        return int(row[0])

    def _stage(self, cur: Any, name: str, columns: Sequence[tuple[str, str]], rows: list[tuple]) -> tuple[str, list]:
        """A FROM-source yielding ``rows`` (with their batch position ``n``): COPY for big batches, else arrays."""
        names = ", ".join(c for c, _ in columns)
        if len(rows) >= COPY_FROM:
            table = f"_stage_{name}"
            cur.execute(f"CREATE TEMP TABLE {table} (n INT8, "
                        + ", ".join(f"{c} {t}" for c, t in columns) + ") ON COMMIT DROP")
            copy_rows(cur, f"COPY {table} (n, {names}) FROM STDIN", rows)
            return f"(SELECT n, {names} FROM {table})", []
        arrays = [[row[i] for row in rows] for i in range(len(columns))]
        unnest = ", ".join(f"%s::{t}[]" for _, t in columns)
        return (f"(SELECT (ordinality - 1) AS n, {names} FROM unnest({unnest}) WITH ORDINALITY "
                f"AS s({names}, ordinality))"), arrays

    # writes ------------------------------------------------------------------------------
    def upsert_products(self, products: Sequence[Product]) -> WriteResult:
        if not products:
            return WriteResult(stored=0)
        latest = {p.id: p for p in products}  # the last copy of an id in a batch wins
        rows = [(p.id, json.dumps(p.to_dict(), ensure_ascii=False)) for p in latest.values()]
        with self._write(f"a batch of {len(rows)} products") as cur:
            version = self._next_version(cur)
            source, params = self._stage(cur, "products", [("id", "text"), ("data", "text")], rows)
            cur.execute(
                f"INSERT INTO products (shop, id, data, version) SELECT %s, id, data, %s FROM {source} AS s "
                "ORDER BY n ON CONFLICT (shop, id) DO UPDATE SET data = EXCLUDED.data, version = EXCLUDED.version, "
                "ord = EXCLUDED.ord RETURNING (xmax = 0)",
                [self.shop, version, *params],
            )
            inserted = sum(1 for (fresh,) in cur.fetchall() if fresh)
            cur.execute("DELETE FROM deleted_products WHERE shop = %s AND id = ANY(%s)", (self.shop, list(latest)))
        return WriteResult(stored=inserted, updated=len(latest) - inserted, duplicates=len(products) - len(latest))

    def delete_products(self, ids: Sequence[str]) -> int:
        unique = list(dict.fromkeys(ids))
        with self._write(f"deleting {len(unique)} products") as cur:
            version = self._next_version(cur)
            gone = [r[0] for r in cur.execute("DELETE FROM products WHERE shop = %s AND id = ANY(%s) RETURNING id",
                                              (self.shop, unique)).fetchall()]
            if gone:
                cur.execute("INSERT INTO deleted_products (shop, id, version) SELECT %s, id, %s "
                            "FROM unnest(%s::text[]) AS id "
                            "ON CONFLICT (shop, id) DO UPDATE SET version = EXCLUDED.version",
                            (self.shop, version, gone))
        return len(gone)

    def append_events(self, events: Sequence[Event]) -> WriteResult:
        if not events:
            return WriteResult(stored=0)
        rows = [(e.event_id, e.user_id, e.item_id, e.type, e.timestamp, e.query, e.position, e.session_id, e.value)
                for e in events]
        columns = list(zip([c.strip('"') for c in _EVENT_COLUMNS.split(", ")], _EVENT_TYPES, strict=True))
        columns = [(f'"{c}"' if c in ("timestamp", "position") else c, t) for c, t in columns]
        with self._write(f"a batch of {len(rows)} events") as cur:
            source, params = self._stage(cur, "events", columns, rows)
            cur.execute(
                f"INSERT INTO events (shop, {_EVENT_COLUMNS}) SELECT %s, {_EVENT_COLUMNS} FROM {source} AS s "
                "ORDER BY n ON CONFLICT (shop, event_id) DO NOTHING",
                [self.shop, *params],
            )
            stored = cur.rowcount
            attributed = [(e.event_id, e.request_id) for e in events if e.request_id]
            if attributed:
                cur.execute("INSERT INTO event_requests (shop, event_id, request_id) SELECT %s, event_id, request_id "
                            "FROM unnest(%s::text[], %s::text[]) AS a(event_id, request_id) "
                            "ON CONFLICT (shop, event_id) DO NOTHING",
                            (self.shop, [a[0] for a in attributed], [a[1] for a in attributed]))
        return WriteResult(stored=stored, duplicates=len(events) - stored)

    def delete_user(self, user_id: str) -> dict[str, int]:
        with self._write("deleting a user's data") as cur:
            cur.execute("DELETE FROM event_requests r USING events e WHERE r.shop = %s AND e.shop = r.shop "
                        "AND e.event_id = r.event_id AND e.user_id = %s", (self.shop, user_id))
            cur.execute("DELETE FROM events WHERE shop = %s AND user_id = %s", (self.shop, user_id))
            events = cur.rowcount
            cur.execute("DELETE FROM impression_meta m USING impressions i WHERE m.shop = %s AND i.shop = m.shop "
                        "AND i.request_id = m.request_id AND i.user_id = %s", (self.shop, user_id))
            cur.execute("DELETE FROM impressions WHERE shop = %s AND user_id = %s", (self.shop, user_id))
            impressions = cur.rowcount
        return {"events": events, "impressions": impressions}

    def upsert_judgments(self, judgments: Sequence[Judgment]) -> WriteResult:
        if not judgments:
            return WriteResult(stored=0)
        latest = {(j.query, j.product_id): j for j in judgments}
        rows = [(j.query, j.product_id, j.grade) for j in latest.values()]
        with self._write(f"a batch of {len(rows)} judgments") as cur:
            source, params = self._stage(cur, "judgments",
                                         [("query", "text"), ("product_id", "text"), ("grade", "float8")], rows)
            cur.execute(
                f"INSERT INTO judgments (shop, query, product_id, grade) SELECT %s, query, product_id, grade "
                f"FROM {source} AS s ORDER BY n ON CONFLICT (shop, query, product_id) DO UPDATE "
                "SET grade = EXCLUDED.grade, ord = EXCLUDED.ord RETURNING (xmax = 0)",
                [self.shop, *params],
            )
            inserted = sum(1 for (fresh,) in cur.fetchall() if fresh)
        return WriteResult(stored=inserted, updated=len(judgments) - inserted)

    def set_setting(self, key: str, value: Any) -> None:
        text = json.dumps(value)
        with self._write(f"setting {key!r}") as cur:
            cur.execute("INSERT INTO settings (shop, key, value) VALUES (%s, %s, %s) "
                        "ON CONFLICT (shop, key) DO UPDATE SET value = EXCLUDED.value", (self.shop, key, text))

    # reads -------------------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        with self._read("reading a setting") as conn:
            row = conn.execute("SELECT value FROM settings WHERE shop = %s AND key = %s", (self.shop, key)).fetchone()
        return default if row is None else json.loads(row[0])

    def get_products(self, ids: Sequence[str]) -> list[Product | None]:
        with self._read("reading products") as conn:
            rows = conn.execute("SELECT id, data FROM products WHERE shop = %s AND id = ANY(%s)",
                                (self.shop, list(ids))).fetchall()
        found = {pid: Product(**json.loads(data)) for pid, data in rows}
        return [found.get(i) for i in ids]

    def iter_products(self) -> Iterator[Product]:
        for (data,) in self._stream("SELECT data FROM products WHERE shop = %s ORDER BY ord", (self.shop,)):
            yield Product(**json.loads(data))

    def catalog_version(self) -> int:
        with self._read("reading the catalogue version") as conn:
            row = conn.execute("SELECT catalog_version FROM shops WHERE name = %s", (self.shop,)).fetchone()
        return int(row[0]) if row else 0

    def products_changed_since(self, version: int) -> tuple[list[Product], list[str], int]:
        with self._read("reading catalogue changes") as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")  # one snapshot for all three
            row = conn.execute("SELECT catalog_version FROM shops WHERE name = %s", (self.shop,)).fetchone()
            current = int(row[0]) if row else 0
            if current == version:
                return [], [], current
            changed = [Product(**json.loads(d)) for (d,) in conn.execute(
                "SELECT data FROM products WHERE shop = %s AND version > %s ORDER BY version, ord",
                (self.shop, version))]
            deleted = [i for (i,) in conn.execute(
                "SELECT id FROM deleted_products WHERE shop = %s AND version > %s", (self.shop, version))]
        return changed, deleted, current

    def iter_events(self, types: Iterable[str] | None = None) -> Iterator[Event]:
        sql = f"SELECT {_EVENT_SELECT} WHERE e.shop = %s"
        params: list[Any] = [self.shop]
        if types is not None:
            sql += " AND e.type = ANY(%s)"
            params.append(list(types))
        for row in self._stream(sql + ' ORDER BY e."timestamp", e.seq', params):
            yield Event(*row)

    def _stream(self, sql: str, params: Sequence[Any]) -> Iterator[tuple]:
        """Rows through a server-side cursor: a log of millions is never held whole."""
        with self._read("reading") as conn, conn.transaction(), conn.cursor(name="shoprank_stream") as cur:
            cur.itersize = 5000
            cur.execute(sql, params)
            yield from cur

    def user_events(self, user_id: str, limit: int = 200) -> list[Event]:
        with self._read("reading a user's events") as conn:
            rows = conn.execute(
                f"SELECT {_EVENT_SELECT} WHERE e.shop = %s AND e.user_id = %s "
                'ORDER BY e."timestamp" DESC, e.seq DESC LIMIT %s', (self.shop, user_id, limit)).fetchall()
        return [Event(*r) for r in reversed(rows)]

    def recent_users(self, limit: int = 100, scan: int = 5000) -> list[str]:
        with self._read("reading recent users") as conn:
            rows = conn.execute("SELECT user_id FROM events WHERE shop = %s ORDER BY seq DESC LIMIT %s",
                                (self.shop, scan)).fetchall()
        return list(dict.fromkeys(r[0] for r in rows))[:limit]

    def judgments(self) -> list[Judgment]:
        with self._read("reading judgments") as conn:
            rows = conn.execute("SELECT query, product_id, grade FROM judgments WHERE shop = %s ORDER BY ord",
                                (self.shop,)).fetchall()
        return [Judgment(*r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._read("counting") as conn:
            def one(sql: str) -> int:
                return int(conn.execute(sql, (self.shop,)).fetchone()[0])

            return {
                "products": one("SELECT COUNT(*) FROM products WHERE shop = %s"),
                "events": one("SELECT COUNT(*) FROM events WHERE shop = %s"),
                "users": one("SELECT COUNT(DISTINCT user_id) FROM events WHERE shop = %s"),
                "judgments": one("SELECT COUNT(*) FROM judgments WHERE shop = %s"),
                "queries": one("SELECT COUNT(DISTINCT query) FROM judgments WHERE shop = %s"),
                "impressions": one("SELECT COUNT(*) FROM impressions WHERE shop = %s"),
            }

    def product_count(self) -> int:
        with self._read("counting products") as conn:
            return int(conn.execute("SELECT COUNT(*) FROM products WHERE shop = %s", (self.shop,)).fetchone()[0])

    def event_count(self) -> int:
        with self._read("counting events") as conn:
            return int(conn.execute("SELECT COUNT(*) FROM events WHERE shop = %s", (self.shop,)).fetchone()[0])

    def check_integrity(self) -> list[str]:
        problems = []
        with self._read("checking the store") as conn:
            version = conn.execute("SELECT COALESCE(MAX(version), 0) FROM shoprank_schema").fetchone()[0]
            if version != SCHEMA_VERSION:
                problems.append(f"schema version {version}, expected {SCHEMA_VERSION}")
            if conn.execute("SELECT 1 FROM shops WHERE name = %s", (self.shop,)).fetchone() is None:
                problems.append(f"shop {self.shop!r} is not registered in the shops table")
            orphans = conn.execute(
                "SELECT COUNT(*) FROM products WHERE shop = %s AND version > "
                "(SELECT catalog_version FROM shops WHERE name = %s)", (self.shop, self.shop)).fetchone()[0]
            if orphans:
                problems.append(f"{orphans} products carry a version past the shop's catalogue version")
        return problems

    def close(self) -> None:
        """Nothing to release: the pool is the process's, shared with every other store on the database."""


def copy_rows(cur: Any, statement: str, rows: list[tuple]) -> None:
    """``COPY ... FROM STDIN`` of ``rows``, each prefixed with its position in the batch."""
    with cur.copy(statement) as copy:
        for n, row in enumerate(rows):
            copy.write_row((n, *row))
