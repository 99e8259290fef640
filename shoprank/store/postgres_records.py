"""The PostgreSQL store's secondary records: impressions, the FAQ and support conversations, reviews with their
sentiment, and alerts. A mixin of :class:`~shoprank.store.postgres.PostgresStore`, on the same plumbing
(``_write`` one transaction, ``_read`` one pooled connection, ``_stage`` a batch as a row source, ``_stream`` a
server-side cursor) and the same ``shop`` column."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from shoprank.answers.records import Conversation, FaqEntry
from shoprank.data.impressions import Impression
from shoprank.data.outcomes import Outcome, join_outcomes
from shoprank.data.records import Review
from shoprank.store.base import ReviewSentiment, WriteResult

_IMPRESSION_COLUMNS = 'request_id, "timestamp", surface, user_id, query, item_id, model_version, page, shown'
_IMPRESSION_TYPES = ("text", "float8", "text", "text", "text", "text", "text", "int4", "text")
_META_COLUMNS = "total, latency_ms, experiment, variant, teams"
_IMPRESSION_SELECT = (", ".join(f"i.{c}" for c in _IMPRESSION_COLUMNS.split(", ")) + ", "
                      + ", ".join(f"m.{c}" for c in _META_COLUMNS.split(", ")))
_IMPRESSION_FROM = ("impressions i LEFT JOIN impression_meta m ON m.shop = i.shop AND m.request_id = i.request_id")
_REVIEW_COLUMNS = 'review_id, product_id, text, "timestamp", user_id, rating, title, language'
_REVIEW_TYPES = ("text", "text", "text", "float8", "text", "float8", "text", "text")


class ShopRecords:
    """Impressions, FAQ, conversations, reviews, sentiment and alerts of one shop."""

    shop: str
    _write: Any
    _read: Any
    _stage: Any
    _stream: Any

    # impressions ---------------------------------------------------------------------------
    def append_impressions(self, impressions: Sequence[Impression]) -> WriteResult:
        if not impressions:
            return WriteResult(stored=0)
        rows = [(i.request_id, i.timestamp, i.surface, i.user_id, i.query, i.item_id, i.model_version, i.page,
                 json.dumps([[p, item] for p, item in zip(i.positions, i.items, strict=True)], ensure_ascii=False,
                            separators=(",", ":")))
                for i in impressions]
        columns = list(zip(_IMPRESSION_COLUMNS.split(", "), _IMPRESSION_TYPES, strict=True))
        with self._write(f"a batch of {len(rows)} impressions") as cur:
            source, params = self._stage(cur, "impressions", columns, rows)
            cur.execute(
                f"INSERT INTO impressions (shop, {_IMPRESSION_COLUMNS}) SELECT %s, {_IMPRESSION_COLUMNS} "
                f"FROM {source} AS s ORDER BY n ON CONFLICT (shop, request_id) DO NOTHING RETURNING request_id",
                [self.shop, *params],
            )
            inserted = {row[0] for row in cur.fetchall()}
            stored = len(inserted)
            first: dict[str, Impression] = {}
            for i in impressions:  # the first copy of a request id is the one kept, its facts too
                first.setdefault(i.request_id, i)
            meta = [i for rid, i in first.items() if rid in inserted and i.has_meta]
            if meta:
                cur.execute(
                    f"INSERT INTO impression_meta (shop, request_id, {_META_COLUMNS}) SELECT %s, * FROM "
                    "unnest(%s::text[], %s::int4[], %s::float8[], %s::text[], %s::text[], %s::text[]) "
                    "ON CONFLICT (shop, request_id) DO NOTHING",
                    [self.shop, [i.request_id for i in meta], [i.total for i in meta], [i.latency_ms for i in meta],
                     [i.experiment for i in meta], [i.variant for i in meta],
                     [json.dumps(list(i.teams), ensure_ascii=False) if i.teams is not None else None for i in meta]])
        return WriteResult(stored=stored, duplicates=len(impressions) - stored)

    def get_impressions(self, request_ids: Sequence[str]) -> dict[str, Impression]:
        with self._read("reading impressions") as conn:
            rows = conn.execute(f"SELECT {_IMPRESSION_SELECT} FROM {_IMPRESSION_FROM} WHERE i.shop = %s "
                                "AND i.request_id = ANY(%s)",
                                (self.shop, list(dict.fromkeys(request_ids)))).fetchall()
        return {row[0]: _impression(row) for row in rows}

    def _impression_where(self, since: float | None, until: float | None, surfaces: Iterable[str] | None,
                          experiment: str | None = None) -> tuple[str, list[Any]]:
        sql = " WHERE i.shop = %s"
        params: list[Any] = [self.shop]
        if since is not None:
            sql += ' AND i."timestamp" >= %s'
            params.append(since)
        if until is not None:
            sql += ' AND i."timestamp" < %s'
            params.append(until)
        if surfaces is not None:
            sql += " AND i.surface = ANY(%s)"
            params.append(list(surfaces))
        if experiment is not None:
            sql += " AND m.experiment = %s"
            params.append(experiment)
        return sql, params

    def iter_impressions(self, since: float | None = None, until: float | None = None,
                         surfaces: Iterable[str] | None = None) -> Iterator[Impression]:
        where, params = self._impression_where(since, until, surfaces)
        for row in self._stream(f"SELECT {_IMPRESSION_SELECT} FROM {_IMPRESSION_FROM}{where} "
                                'ORDER BY i."timestamp", i.seq', params):
            yield _impression(row)

    def impression_outcomes(self, since: float | None = None, until: float | None = None,
                            surfaces: Iterable[str] | None = None,
                            experiment: str | None = None) -> Iterator[Outcome]:
        where, params = self._impression_where(since, until, surfaces, experiment)
        with self._read("reading attributed events") as conn:
            events = conn.execute(
                'SELECT r.request_id, e.type, e.item_id, e."position", e."timestamp" FROM event_requests r '
                "JOIN events e ON e.shop = r.shop AND e.event_id = r.event_id "
                "JOIN impressions i ON i.shop = r.shop AND i.request_id = r.request_id "
                f"LEFT JOIN impression_meta m ON m.shop = i.shop AND m.request_id = i.request_id{where}",
                params).fetchall()
        rows = self._stream(f"SELECT {_IMPRESSION_SELECT} FROM {_IMPRESSION_FROM}{where} "
                            'ORDER BY i."timestamp", i.seq', params)
        yield from join_outcomes((_impression(row) for row in rows), events)

    def delete_impressions_before(self, timestamp: float) -> int:
        with self._write("deleting old impressions") as cur:
            cur.execute("DELETE FROM impression_meta m USING impressions i WHERE m.shop = %s AND i.shop = m.shop "
                        'AND i.request_id = m.request_id AND i."timestamp" < %s', (self.shop, timestamp))
            cur.execute('DELETE FROM impressions WHERE shop = %s AND "timestamp" < %s', (self.shop, timestamp))
            return cur.rowcount

    # reviews, their sentiment, alerts ------------------------------------------------------
    def upsert_reviews(self, reviews: Sequence[Review]) -> WriteResult:
        if not reviews:
            return WriteResult(stored=0)
        latest = {r.review_id: r for r in reviews}  # the last copy in a batch wins
        rows = [(r.review_id, r.product_id, r.text, r.timestamp, r.user_id, r.rating, r.title, r.language)
                for r in latest.values()]
        columns = list(zip(_REVIEW_COLUMNS.split(", "), _REVIEW_TYPES, strict=True))
        with self._write(f"a batch of {len(rows)} reviews") as cur:
            source, params = self._stage(cur, "reviews", columns, rows)
            cur.execute(
                f"INSERT INTO reviews (shop, {_REVIEW_COLUMNS}) SELECT %s, {_REVIEW_COLUMNS} FROM {source} AS s "
                "ORDER BY n ON CONFLICT (shop, review_id) DO UPDATE SET "
                + ", ".join(f"{c} = EXCLUDED.{c}" for c, _ in columns[1:]) + " RETURNING (xmax = 0)",
                [self.shop, *params],
            )
            inserted = sum(1 for (fresh,) in cur.fetchall() if fresh)
            ids, products = list(latest), list({r.product_id for r in latest.values()})
            known = {pid for (pid,) in cur.execute("SELECT id FROM products WHERE shop = %s AND id = ANY(%s)",
                                                    (self.shop, products)).fetchall()}
            cur.execute("DELETE FROM review_sentiment WHERE shop = %s AND review_id = ANY(%s)",  # scored again
                        (self.shop, ids))
        return WriteResult(stored=inserted, updated=len(latest) - inserted, duplicates=len(reviews) - len(latest),
                           flagged=sum(r.product_id not in known for r in latest.values()))

    def iter_reviews(self, product_id: str | None = None, since: float | None = None) -> Iterator[Review]:
        sql, params = f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE shop = %s", [self.shop]
        if product_id is not None:
            sql, params = sql + " AND product_id = %s", [*params, product_id]
        if since is not None:
            sql, params = sql + ' AND "timestamp" >= %s', [*params, since]
        for row in self._stream(sql + ' ORDER BY "timestamp", review_id', params):
            yield Review(*row)

    def unknown_product_reviews(self) -> list[str]:
        with self._read("reading reviews") as conn:
            return [i for (i,) in conn.execute(
                "SELECT r.review_id FROM reviews r WHERE r.shop = %s AND NOT EXISTS (SELECT 1 FROM products p "
                "WHERE p.shop = r.shop AND p.id = r.product_id) ORDER BY r.review_id", (self.shop,))]

    def put_review_sentiment(self, rows: Sequence[ReviewSentiment]) -> None:
        if not rows:
            return
        with self._write(f"the sentiment of {len(rows)} reviews") as cur:
            latest = {r.review_id: r for r in rows}
            cur.execute(
                "INSERT INTO review_sentiment (shop, review_id, model_version, label, score, topics) "
                "SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::int4[], %s::float8[], %s::text[]) "
                "ON CONFLICT (shop, review_id) DO UPDATE SET model_version = EXCLUDED.model_version, "
                "label = EXCLUDED.label, score = EXCLUDED.score, topics = EXCLUDED.topics",
                (self.shop, list(latest), [r.model_version for r in latest.values()],
                 [int(r.label) for r in latest.values()], [float(r.score) for r in latest.values()],
                 [json.dumps(list(r.topics)) for r in latest.values()]),
            )

    def review_sentiment(self, model_version: str) -> dict[str, ReviewSentiment]:
        with self._read("reading review sentiment") as conn:
            rows = conn.execute("SELECT review_id, model_version, label, score, topics FROM review_sentiment "
                                "WHERE shop = %s AND model_version = %s", (self.shop, model_version)).fetchall()
        return {r[0]: ReviewSentiment(r[0], r[1], int(r[2]), float(r[3]), tuple(json.loads(r[4]))) for r in rows}

    def add_alerts(self, alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        new: list[dict[str, Any]] = []
        with self._write(f"{len(alerts)} alerts") as cur:
            for alert in alerts:
                cur.execute("INSERT INTO alerts (shop, scope, at, data, created) VALUES (%s, %s, %s, %s, %s) "
                            "ON CONFLICT (shop, scope, at) DO NOTHING",
                            (self.shop, alert["scope"], float(alert["at_epoch"]), json.dumps(alert, ensure_ascii=False),
                             time.time()))
                if cur.rowcount:
                    new.append(alert)
        return new

    def list_alerts(self, limit: int = 100, scope: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT data, delivered, attempts, error FROM alerts WHERE shop = %s", [self.shop]
        if scope is not None:
            sql, params = sql + " AND scope = %s", [*params, scope]
        with self._read("reading alerts") as conn:
            rows = conn.execute(sql + " ORDER BY at DESC, scope LIMIT %s", [*params, int(limit)]).fetchall()
        return [{**json.loads(d), "delivered": bool(ok), "attempts": n, "delivery_error": err}
                for d, ok, n, err in rows]

    def mark_alert(self, scope: str, at: float, delivered: bool, attempts: int, error: str | None = None) -> None:
        with self._write("recording an alert's delivery") as cur:
            cur.execute("UPDATE alerts SET delivered = %s, attempts = %s, error = %s "
                        "WHERE shop = %s AND scope = %s AND at = %s",
                        (bool(delivered), attempts, error, self.shop, scope, float(at)))

    # customer-service answers -------------------------------------------------------------
    def put_faq(self, entries: Sequence[FaqEntry], *, replace: bool = True) -> WriteResult:
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids):
            raise ValueError("FAQ entry ids must be unique in a batch")
        with self._write(f"a FAQ of {len(ids)} entries") as cur:
            cur.execute("SELECT 1 FROM shops WHERE name = %s FOR UPDATE", (self.shop,))  # one FAQ writer at a time
            existing = {i for (i,) in cur.execute("SELECT id FROM faq WHERE shop = %s", (self.shop,)).fetchall()}
            start = cur.execute('SELECT COALESCE(MAX("position"), -1) + 1 FROM faq WHERE shop = %s',
                                (self.shop,)).fetchone()[0]
            removed = 0
            if replace:
                gone = sorted(existing - set(ids))
                cur.execute("DELETE FROM faq WHERE shop = %s AND id = ANY(%s)", (self.shop, gone))
                removed, start = len(gone), 0
            if entries:
                cur.execute(
                    'INSERT INTO faq (shop, id, data, "position") SELECT %s, id, data, p '
                    "FROM unnest(%s::text[], %s::text[], %s::int4[]) AS s(id, data, p) "
                    "ON CONFLICT (shop, id) DO UPDATE SET data = EXCLUDED.data"
                    + (', "position" = EXCLUDED."position"' if replace else ""),
                    (self.shop, ids, [json.dumps(e.to_dict(), ensure_ascii=False) for e in entries],
                     [start + n for n in range(len(entries))]),
                )
        updated = len(existing & set(ids))
        return WriteResult(stored=len(ids) - updated, updated=updated, removed=removed)

    def faq_entries(self, ids: Sequence[str] | None = None) -> list[FaqEntry]:
        with self._read("reading the FAQ") as conn:
            rows = conn.execute('SELECT id, data FROM faq WHERE shop = %s ORDER BY "position", ord',
                                (self.shop,)).fetchall()
        found = {i: _faq_entry(d) for i, d in rows}
        if ids is None:
            return list(found.values())
        return [found[i] for i in ids if i in found]

    def append_conversations(self, conversations: Sequence[Conversation]) -> WriteResult:
        if not conversations:
            return WriteResult(stored=0)
        with self._write(f"a batch of {len(conversations)} conversations") as cur:
            cur.execute(
                "INSERT INTO conversations (shop, question, faq_id) SELECT %s, q, f FROM unnest(%s::text[], "
                "%s::text[]) WITH ORDINALITY AS s(q, f, n) ORDER BY n ON CONFLICT (shop, question, faq_id) DO NOTHING",
                (self.shop, [c.question for c in conversations], [c.faq_id or "" for c in conversations]),
            )
            stored = cur.rowcount
        return WriteResult(stored=stored, duplicates=len(conversations) - stored)

    def conversations(self) -> list[Conversation]:
        with self._read("reading conversations") as conn:
            rows = conn.execute("SELECT question, faq_id FROM conversations WHERE shop = %s ORDER BY ord",
                                (self.shop,)).fetchall()
        return [Conversation(q, f or None) for q, f in rows]



def _impression(row: Sequence[Any]) -> Impression:
    shown = json.loads(row[8])
    total, latency, experiment, variant, teams = row[9:14]
    return Impression(request_id=row[0], timestamp=row[1], surface=row[2], user_id=row[3], query=row[4],
                      item_id=row[5], model_version=row[6], page=row[7],
                      items=tuple(str(p[1]) for p in shown), positions=tuple(int(p[0]) for p in shown),
                      total=total, latency_ms=latency, experiment=experiment, variant=variant,
                      teams=tuple(json.loads(teams)) if teams else None)


def _faq_entry(text: str) -> FaqEntry:
    raw = json.loads(text)
    return FaqEntry(id=raw["id"], answer=raw["answer"], questions=tuple(raw["questions"]),
                    search=bool(raw.get("search", False)))
