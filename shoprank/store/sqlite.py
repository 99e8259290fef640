"""The embedded store: one SQLite file per shop in WAL mode with full fsync on commit."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from shoprank.answers.records import Conversation, FaqEntry
from shoprank.data.impressions import Impression
from shoprank.data.outcomes import Outcome, join_outcomes
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
CREATE TABLE IF NOT EXISTS impressions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE,
    timestamp REAL NOT NULL,
    surface TEXT NOT NULL,
    user_id TEXT,
    query TEXT,
    item_id TEXT,
    model_version TEXT,
    page INTEGER NOT NULL,
    shown TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS impressions_time ON impressions(timestamp, seq);
CREATE TABLE IF NOT EXISTS event_requests (
    event_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS event_requests_request ON event_requests(request_id);
CREATE TABLE IF NOT EXISTS impression_meta (
    request_id TEXT PRIMARY KEY,
    total INTEGER,
    latency_ms REAL,
    experiment TEXT,
    variant TEXT,
    teams TEXT
);
CREATE INDEX IF NOT EXISTS impression_meta_experiment ON impression_meta(experiment);
CREATE TABLE IF NOT EXISTS faq (id TEXT PRIMARY KEY, data TEXT NOT NULL, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (
    question TEXT NOT NULL,
    faq_id TEXT NOT NULL,  -- '' when no entry answered it
    PRIMARY KEY (question, faq_id)
);
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
# impressions.shown: JSON [[position, product_id], ...] in shown order. event_requests: the impression each
# attributed event came from. impression_meta: an answer's match count, latency and experiment arm (teams: JSON
# list). Tables added without a schema bump: CREATE ... IF NOT EXISTS on open.

_REVIEW_COLUMNS = "review_id, product_id, text, timestamp, user_id, rating, title, language"
_EVENT_COLUMNS = "event_id, user_id, item_id, type, timestamp, query, position, session_id, value"
_IMPRESSION_COLUMNS = "request_id, timestamp, surface, user_id, query, item_id, model_version, page, shown"
_META_COLUMNS = "total, latency_ms, experiment, variant, teams"
_IMPRESSION_SELECT = (", ".join(f"i.{c}" for c in _IMPRESSION_COLUMNS.split(", ")) + ", "
                      + ", ".join(f"m.{c}" for c in _META_COLUMNS.split(", ")))
_IMPRESSION_FROM = "impressions i LEFT JOIN impression_meta m ON m.request_id = i.request_id"


def _product_from_json(text: str) -> Product:
    return Product(**json.loads(text))


def _faq_from_json(text: str) -> FaqEntry:
    raw = json.loads(text)
    return FaqEntry(id=raw["id"], answer=raw["answer"], questions=tuple(raw["questions"]),
                    search=bool(raw.get("search", False)))


def _event_from_row(row: Sequence[Any], requests: dict[str, str] | None = None) -> Event:
    return Event(*row, request_id=requests.get(row[0]) if requests else None)


def _impression_from_row(row: Sequence[Any]) -> Impression:
    shown = json.loads(row[8])
    total, latency, experiment, variant, teams = row[9:14]
    return Impression(request_id=row[0], timestamp=row[1], surface=row[2], user_id=row[3], query=row[4],
                      item_id=row[5], model_version=row[6], page=row[7],
                      items=tuple(str(p[1]) for p in shown), positions=tuple(int(p[0]) for p in shown),
                      total=total, latency_ms=latency, experiment=experiment, variant=variant,
                      teams=tuple(json.loads(teams)) if teams else None)


def _meta_row(i: Impression) -> tuple[Any, ...]:
    return (i.request_id, i.total, i.latency_ms, i.experiment, i.variant,
            json.dumps(list(i.teams), ensure_ascii=False) if i.teams is not None else None)


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
            attributed = [(e.event_id, e.request_id) for e in events if e.request_id]
            if attributed:
                self._conn.executemany("INSERT OR IGNORE INTO event_requests(event_id, request_id) VALUES (?, ?)",
                                       attributed)
        return WriteResult(stored=stored, duplicates=len(events) - stored)

    def delete_user(self, user_id: str) -> dict[str, int]:
        with self._transaction():
            self._conn.execute("DELETE FROM event_requests WHERE event_id IN "
                               "(SELECT event_id FROM events WHERE user_id = ?)", (user_id,))
            self._conn.execute("DELETE FROM impression_meta WHERE request_id IN "
                               "(SELECT request_id FROM impressions WHERE user_id = ?)", (user_id,))
            events = self._conn.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
            impressions = self._conn.execute("DELETE FROM impressions WHERE user_id = ?", (user_id,)).rowcount
        return {"events": events, "impressions": impressions}

    def append_impressions(self, impressions: Sequence[Impression]) -> WriteResult:
        if not impressions:
            return WriteResult(stored=0)
        with self._transaction():
            with_meta = {}
            for i in impressions:  # the first copy of a request id is the one kept, its facts too
                with_meta.setdefault(i.request_id, i)
            with_meta = {rid: i for rid, i in with_meta.items() if i.has_meta}
            if with_meta:
                ids = list(with_meta)
                for start in range(0, len(ids), 900):
                    chunk = ids[start : start + 900]
                    for (rid,) in self._conn.execute(
                            f"SELECT request_id FROM impressions WHERE request_id IN ({','.join('?' * len(chunk))})",
                            chunk):
                        with_meta.pop(rid, None)
                self._conn.executemany(
                    f"INSERT OR IGNORE INTO impression_meta(request_id, {_META_COLUMNS}) VALUES (?,?,?,?,?,?)",
                    [_meta_row(i) for i in with_meta.values()])
            before = self._conn.total_changes
            self._conn.executemany(
                f"INSERT OR IGNORE INTO impressions({_IMPRESSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                [(i.request_id, i.timestamp, i.surface, i.user_id, i.query, i.item_id, i.model_version, i.page,
                  json.dumps([[p, item] for p, item in zip(i.positions, i.items, strict=True)],
                             ensure_ascii=False, separators=(",", ":")))
                 for i in impressions],
            )
            stored = self._conn.total_changes - before
        return WriteResult(stored=stored, duplicates=len(impressions) - stored)

    def get_impressions(self, request_ids: Sequence[str]) -> dict[str, Impression]:
        found: dict[str, Impression] = {}
        ids = list(dict.fromkeys(request_ids))
        with self._lock:
            for start in range(0, len(ids), 900):
                chunk = ids[start : start + 900]
                marks = ",".join("?" * len(chunk))
                for row in self._conn.execute(
                    f"SELECT {_IMPRESSION_SELECT} FROM {_IMPRESSION_FROM} WHERE i.request_id IN ({marks})", chunk
                ):
                    found[row[0]] = _impression_from_row(row)
        return found

    @staticmethod
    def _impression_where(since: float | None, until: float | None, surfaces: Iterable[str] | None,
                          experiment: str | None = None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if since is not None:
            clauses.append("i.timestamp >= ?")
            params.append(since)
        if until is not None:
            clauses.append("i.timestamp < ?")
            params.append(until)
        if surfaces is not None:
            names = list(surfaces)
            clauses.append(f"i.surface IN ({','.join('?' * len(names))})")
            params += names
        if experiment is not None:
            clauses.append("m.experiment = ?")
            params.append(experiment)
        return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params

    def iter_impressions(self, since: float | None = None, until: float | None = None,
                         surfaces: Iterable[str] | None = None) -> Iterator[Impression]:
        where, params = self._impression_where(since, until, surfaces)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_IMPRESSION_SELECT} FROM {_IMPRESSION_FROM}{where} ORDER BY i.timestamp, i.seq", params
            ).fetchall()
        for row in rows:
            yield _impression_from_row(row)

    def impression_outcomes(self, since: float | None = None, until: float | None = None,
                            surfaces: Iterable[str] | None = None,
                            experiment: str | None = None) -> Iterator[Outcome]:
        where, params = self._impression_where(since, until, surfaces, experiment)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_IMPRESSION_SELECT} FROM {_IMPRESSION_FROM}{where} ORDER BY i.timestamp, i.seq", params
            ).fetchall()
            events = self._conn.execute(
                "SELECT r.request_id, e.type, e.item_id, e.position, e.timestamp FROM event_requests r "
                "JOIN events e ON e.event_id = r.event_id "
                "JOIN impressions i ON i.request_id = r.request_id "
                f"LEFT JOIN impression_meta m ON m.request_id = i.request_id{where}", params).fetchall()
        yield from join_outcomes((_impression_from_row(row) for row in rows), events)

    def delete_impressions_before(self, timestamp: float) -> int:
        with self._transaction():
            self._conn.execute("DELETE FROM impression_meta WHERE request_id IN "
                               "(SELECT request_id FROM impressions WHERE timestamp < ?)", (timestamp,))
            return self._conn.execute("DELETE FROM impressions WHERE timestamp < ?", (timestamp,)).rowcount

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
            requests = dict(self._conn.execute("SELECT event_id, request_id FROM event_requests").fetchall())
        for row in rows:
            yield _event_from_row(row, requests)

    def user_events(self, user_id: str, limit: int = 200) -> list[Event]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE user_id = ? "
                "ORDER BY timestamp DESC, seq DESC LIMIT ?",
                (user_id, limit),
            ).fetchall()
            requests = self._requests_of([r[0] for r in rows])
        return [_event_from_row(r, requests) for r in reversed(rows)]

    def _requests_of(self, event_ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for start in range(0, len(event_ids), 900):
            chunk = event_ids[start : start + 900]
            out.update(self._conn.execute(
                f"SELECT event_id, request_id FROM event_requests WHERE event_id IN ({','.join('?' * len(chunk))})",
                chunk).fetchall())
        return out

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
                "impressions": one("SELECT COUNT(*) FROM impressions").fetchone()[0],
            }

    def product_count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM products").fetchone()[0]

    def event_count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    def put_faq(self, entries: Sequence[FaqEntry], *, replace: bool = True) -> WriteResult:
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids):
            raise ValueError("FAQ entry ids must be unique in a batch")
        with self._transaction():
            existing = {i for (i,) in self._conn.execute("SELECT id FROM faq")}
            start = self._conn.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM faq").fetchone()[0]
            removed = 0
            if replace:
                gone = existing - set(ids)
                self._conn.executemany("DELETE FROM faq WHERE id = ?", [(i,) for i in gone])
                removed, start = len(gone), 0
            self._conn.executemany(
                "INSERT INTO faq(id, data, position) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "data = excluded.data" + (", position = excluded.position" if replace else ""),
                [(e.id, json.dumps(e.to_dict(), ensure_ascii=False), start + n) for n, e in enumerate(entries)],
            )
        updated = len(existing & set(ids))
        return WriteResult(stored=len(ids) - updated, updated=updated, removed=removed)

    def faq_entries(self, ids: Sequence[str] | None = None) -> list[FaqEntry]:
        with self._lock:
            rows = self._conn.execute("SELECT id, data FROM faq ORDER BY position, rowid").fetchall()
        found = {i: _faq_from_json(d) for i, d in rows}
        if ids is None:
            return list(found.values())
        return [found[i] for i in ids if i in found]

    def append_conversations(self, conversations: Sequence[Conversation]) -> WriteResult:
        if not conversations:
            return WriteResult(stored=0)
        with self._transaction():
            before = self._conn.total_changes
            self._conn.executemany(
                "INSERT OR IGNORE INTO conversations(question, faq_id) VALUES (?, ?)",
                [(c.question, c.faq_id or "") for c in conversations],
            )
            stored = self._conn.total_changes - before
        return WriteResult(stored=stored, duplicates=len(conversations) - stored)

    def conversations(self) -> list[Conversation]:
        with self._lock:
            rows = self._conn.execute("SELECT question, faq_id FROM conversations ORDER BY rowid").fetchall()
        return [Conversation(q, f or None) for q, f in rows]

    def backup(self, path: str | Path) -> None:
        """SQLite's online backup: a consistent copy while writers go on."""
        target = sqlite3.connect(Path(path))
        try:
            with self._lock:
                self._conn.backup(target)
        finally:
            target.close()

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
