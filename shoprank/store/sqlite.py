"""The embedded store: one SQLite file per shop in WAL mode with full fsync on commit."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from shoprank.data.records import Event, Judgment, Product, Review
from shoprank.store.base import ReviewSentiment, Store, StoreFullError, StoreUnavailableError, WriteResult

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS products_version ON products(version);
CREATE TABLE IF NOT EXISTS deleted_products (id TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    type TEXT NOT NULL,
    timestamp REAL NOT NULL,
    query TEXT,
    position INTEGER,
    session_id TEXT,
    value REAL
);
CREATE INDEX IF NOT EXISTS events_user ON events(user_id, timestamp, seq);
CREATE INDEX IF NOT EXISTS events_time ON events(timestamp, seq);
CREATE TABLE IF NOT EXISTS judgments (
    query TEXT NOT NULL,
    product_id TEXT NOT NULL,
    grade REAL NOT NULL,
    PRIMARY KEY (query, product_id)
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reviews (
    review_id TEXT PRIMARY KEY,
    product_id TEXT NOT NULL,
    text TEXT NOT NULL,
    timestamp REAL NOT NULL,
    user_id TEXT,
    rating REAL,
    title TEXT,
    language TEXT
);
CREATE INDEX IF NOT EXISTS reviews_product ON reviews(product_id, timestamp);
CREATE INDEX IF NOT EXISTS reviews_time ON reviews(timestamp, review_id);
CREATE TABLE IF NOT EXISTS review_sentiment (
    review_id TEXT PRIMARY KEY,
    model_version TEXT NOT NULL,
    label INTEGER NOT NULL,
    score REAL NOT NULL,
    topics TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    scope TEXT NOT NULL,
    at REAL NOT NULL,
    data TEXT NOT NULL,
    created REAL NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    PRIMARY KEY (scope, at)
);
"""

_REVIEW_COLUMNS = "review_id, product_id, text, timestamp, user_id, rating, title, language"
_EVENT_COLUMNS = "event_id, user_id, item_id, type, timestamp, query, position, session_id, value"


def _product_from_json(text: str) -> Product:
    return Product(**json.loads(text))


def _event_from_row(row: Sequence[Any]) -> Event:
    return Event(*row)


class SQLiteStore(Store):
    """A shop's store in one SQLite file. Safe to share between threads of one process."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: every commit is fsynced before it returns, so an acknowledged write is durable.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        if not readonly:
            with self._transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )

    # plumbing ----------------------------------------------------------------------------
    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn, self._lock)

    def _next_version(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key='catalog_version'").fetchone()
        version = (int(row[0]) if row else 0) + 1
        self._conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('catalog_version', ?)", (str(version),)
        )
        return version

    # writes ------------------------------------------------------------------------------
    def upsert_products(self, products: Sequence[Product]) -> WriteResult:
        if not products:
            return WriteResult(stored=0)
        latest = {p.id: p for p in products}  # the last copy of an id in a batch wins
        with self._transaction():
            version = self._next_version()
            ids = list(latest)
            existing = 0
            for start in range(0, len(ids), 900):
                chunk = ids[start : start + 900]
                marks = ",".join("?" * len(chunk))
                existing += self._conn.execute(
                    f"SELECT COUNT(*) FROM products WHERE id IN ({marks})", chunk
                ).fetchone()[0]
            self._conn.executemany(
                "INSERT OR REPLACE INTO products(id, data, version) VALUES (?, ?, ?)",
                [(p.id, json.dumps(p.to_dict(), ensure_ascii=False), version) for p in latest.values()],
            )
            self._conn.executemany("DELETE FROM deleted_products WHERE id = ?", [(i,) for i in ids])
        return WriteResult(
            stored=len(latest) - existing, updated=existing, duplicates=len(products) - len(latest)
        )

    def delete_products(self, ids: Sequence[str]) -> int:
        with self._transaction():
            version = self._next_version()
            deleted = 0
            for product_id in dict.fromkeys(ids):
                cursor = self._conn.execute("DELETE FROM products WHERE id = ?", (product_id,))
                if cursor.rowcount:
                    deleted += 1
                    self._conn.execute(
                        "INSERT OR REPLACE INTO deleted_products(id, version) VALUES (?, ?)",
                        (product_id, version),
                    )
        return deleted

    def append_events(self, events: Sequence[Event]) -> WriteResult:
        if not events:
            return WriteResult(stored=0)
        with self._transaction():
            before = self._conn.total_changes
            self._conn.executemany(
                f"INSERT OR IGNORE INTO events({_EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (e.event_id, e.user_id, e.item_id, e.type, e.timestamp, e.query, e.position,
                     e.session_id, e.value)
                    for e in events
                ],
            )
            stored = self._conn.total_changes - before
        return WriteResult(stored=stored, duplicates=len(events) - stored)

    def upsert_judgments(self, judgments: Sequence[Judgment]) -> WriteResult:
        if not judgments:
            return WriteResult(stored=0)
        with self._transaction():
            before = self._conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0]
            self._conn.executemany(
                "INSERT OR REPLACE INTO judgments(query, product_id, grade) VALUES (?, ?, ?)",
                [(j.query, j.product_id, j.grade) for j in judgments],
            )
            after = self._conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0]
        return WriteResult(stored=after - before, updated=len(judgments) - (after - before))

    def upsert_reviews(self, reviews: Sequence[Review]) -> WriteResult:
        if not reviews:
            return WriteResult(stored=0)
        latest = {r.review_id: r for r in reviews}
        with self._transaction():
            existing = flagged = 0
            for start in range(0, len(latest), 900):
                chunk = list(latest.values())[start : start + 900]
                ids = [r.review_id for r in chunk]
                marks = ",".join("?" * len(ids))
                existing += self._conn.execute(
                    f"SELECT COUNT(*) FROM reviews WHERE review_id IN ({marks})", ids
                ).fetchone()[0]
                products = list({r.product_id for r in chunk})
                known = {pid for (pid,) in self._conn.execute(
                    f"SELECT id FROM products WHERE id IN ({','.join('?' * len(products))})", products)}
                flagged += sum(r.product_id not in known for r in chunk)
            self._conn.executemany(
                f"INSERT OR REPLACE INTO reviews({_REVIEW_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                [(r.review_id, r.product_id, r.text, r.timestamp, r.user_id, r.rating, r.title, r.language)
                 for r in latest.values()],
            )
            # an edited review is scored again
            self._conn.executemany("DELETE FROM review_sentiment WHERE review_id = ?", [(i,) for i in latest])
        return WriteResult(stored=len(latest) - existing, updated=existing,
                           duplicates=len(reviews) - len(latest), flagged=flagged)

    def iter_reviews(self, product_id: str | None = None, since: float | None = None) -> Iterator[Review]:
        sql, params = f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE 1=1", []
        if product_id is not None:
            sql, params = sql + " AND product_id = ?", [*params, product_id]
        if since is not None:
            sql, params = sql + " AND timestamp >= ?", [*params, since]
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY timestamp, review_id", params).fetchall()
        for row in rows:
            yield Review(*row)

    def unknown_product_reviews(self) -> list[str]:
        with self._lock:
            return [i for (i,) in self._conn.execute(
                "SELECT review_id FROM reviews WHERE product_id NOT IN (SELECT id FROM products) ORDER BY review_id")]

    def put_review_sentiment(self, rows: Sequence[ReviewSentiment]) -> None:
        with self._transaction():
            self._conn.executemany(
                "INSERT OR REPLACE INTO review_sentiment(review_id, model_version, label, score, topics) "
                "VALUES (?,?,?,?,?)",
                [(r.review_id, r.model_version, int(r.label), float(r.score), json.dumps(list(r.topics)))
                 for r in rows],
            )

    def review_sentiment(self, model_version: str) -> dict[str, ReviewSentiment]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT review_id, model_version, label, score, topics FROM review_sentiment "
                "WHERE model_version = ?", (model_version,)).fetchall()
        return {r[0]: ReviewSentiment(r[0], r[1], int(r[2]), float(r[3]), tuple(json.loads(r[4]))) for r in rows}

    def add_alerts(self, alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        import time as _time

        new: list[dict[str, Any]] = []
        with self._transaction():
            for alert in alerts:
                cursor = self._conn.execute(
                    "INSERT OR IGNORE INTO alerts(scope, at, data, created) VALUES (?,?,?,?)",
                    (alert["scope"], float(alert["at_epoch"]), json.dumps(alert, ensure_ascii=False), _time.time()),
                )
                if cursor.rowcount:
                    new.append(alert)
        return new

    def list_alerts(self, limit: int = 100, scope: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT data, delivered, attempts, error FROM alerts", []
        if scope is not None:
            sql, params = sql + " WHERE scope = ?", [scope]
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY at DESC, scope LIMIT ?", [*params, int(limit)]).fetchall()
        return [{**json.loads(d), "delivered": bool(ok), "attempts": n, "delivery_error": err}
                for d, ok, n, err in rows]

    def mark_alert(self, scope: str, at: float, delivered: bool, attempts: int, error: str | None = None) -> None:
        with self._transaction():
            self._conn.execute("UPDATE alerts SET delivered = ?, attempts = ?, error = ? WHERE scope = ? AND at = ?",
                               (int(delivered), attempts, error, scope, float(at)))

    def set_setting(self, key: str, value: Any) -> None:
        with self._transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", (key, json.dumps(value))
            )

    # reads -------------------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def get_products(self, ids: Sequence[str]) -> list[Product | None]:
        found: dict[str, Product] = {}
        with self._lock:
            for start in range(0, len(ids), 900):
                chunk = list(ids[start : start + 900])
                marks = ",".join("?" * len(chunk))
                for pid, data in self._conn.execute(
                    f"SELECT id, data FROM products WHERE id IN ({marks})", chunk
                ):
                    found[pid] = _product_from_json(data)
        return [found.get(i) for i in ids]

    def iter_products(self) -> Iterator[Product]:
        with self._lock:
            rows = self._conn.execute("SELECT data FROM products ORDER BY rowid").fetchall()
        for (data,) in rows:
            yield _product_from_json(data)

    def catalog_version(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key='catalog_version'").fetchone()
        return int(row[0]) if row else 0

    def products_changed_since(self, version: int) -> tuple[list[Product], list[str], int]:
        with self._lock:
            current = self.catalog_version()
            changed = [
                _product_from_json(d)
                for (d,) in self._conn.execute(
                    "SELECT data FROM products WHERE version > ? ORDER BY version", (version,)
                )
            ]
            deleted = [
                i for (i,) in self._conn.execute(
                    "SELECT id FROM deleted_products WHERE version > ?", (version,)
                )
            ]
        return changed, deleted, current

    def iter_events(self, types: Iterable[str] | None = None) -> Iterator[Event]:
        sql = f"SELECT {_EVENT_COLUMNS} FROM events"
        params: list[str] = []
        if types is not None:
            params = list(types)
            sql += f" WHERE type IN ({','.join('?' * len(params))})"
        sql += " ORDER BY timestamp, seq"
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        for row in rows:
            yield _event_from_row(row)

    def user_events(self, user_id: str, limit: int = 200) -> list[Event]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE user_id = ? "
                "ORDER BY timestamp DESC, seq DESC LIMIT ?",
                (user_id, limit),
            ).fetchall()
        return [_event_from_row(r) for r in reversed(rows)]

    def recent_users(self, limit: int = 100, scan: int = 5000) -> list[str]:
        with self._lock:  # newest events by primary key: cheap on any size of log
            rows = self._conn.execute("SELECT user_id FROM events ORDER BY seq DESC LIMIT ?", (scan,)).fetchall()
        return list(dict.fromkeys(r[0] for r in rows))[:limit]

    def judgments(self) -> list[Judgment]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT query, product_id, grade FROM judgments ORDER BY rowid"
            ).fetchall()
        return [Judgment(*r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            one = self._conn.execute
            return {
                "products": one("SELECT COUNT(*) FROM products").fetchone()[0],
                "events": one("SELECT COUNT(*) FROM events").fetchone()[0],
                "users": one("SELECT COUNT(DISTINCT user_id) FROM events").fetchone()[0],
                "judgments": one("SELECT COUNT(*) FROM judgments").fetchone()[0],
                "queries": one("SELECT COUNT(DISTINCT query) FROM judgments").fetchone()[0],
            }

    def check_integrity(self) -> list[str]:
        with self._lock:
            rows = self._conn.execute("PRAGMA integrity_check").fetchall()
        return [] if rows == [("ok",)] else [r[0] for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; any exception rolls the whole batch back."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self._conn = conn
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            if exc is None:
                try:
                    self._conn.execute("COMMIT")
                    return
                except sqlite3.Error as commit_error:
                    exc = commit_error
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if _is_disk_full(exc):
                raise StoreFullError(28, "disk full under the store; nothing of this batch was stored") from exc
            if isinstance(exc, sqlite3.Error):  # locked, I/O error, corrupt: callers see the store's errors only
                raise StoreUnavailableError(f"the SQLite store failed ({exc}); nothing of this batch was stored; "
                                            "retry") from exc
            if exc_type is None:
                raise exc
        finally:
            self._lock.release()


def _is_disk_full(exc: BaseException | None) -> bool:
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return code == 13 or "full" in str(exc).lower()  # SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno == 28  # ENOSPC
