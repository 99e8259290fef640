"""The PostgreSQL store's schema: numbered migrations, applied in order on start, under a lock.

One database holds every shop of a deployment; each table has a ``shop`` column that leads its primary key,
so one shop's rows are one index range and a shop is dropped with one ``DELETE`` per table. (A schema per
shop would multiply migrations by the number of shops and need DDL to create a shop.)

A database whose schema is newer than the last migration here was written by a newer shoprank: it is refused,
never used half-understood.
"""

from __future__ import annotations

import time
from typing import Any

from shoprank.store.base import StoreVersionError

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "shops, products, change feed, events, judgments, settings", """
        CREATE TABLE shops (
            name TEXT PRIMARY KEY,
            catalog_version BIGINT NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE products (
            shop TEXT NOT NULL,
            id TEXT NOT NULL,
            data TEXT NOT NULL,
            version BIGINT NOT NULL,
            ord BIGSERIAL,
            PRIMARY KEY (shop, id)
        );
        CREATE INDEX products_version ON products (shop, version);
        CREATE INDEX products_ord ON products (shop, ord);
        CREATE TABLE deleted_products (
            shop TEXT NOT NULL,
            id TEXT NOT NULL,
            version BIGINT NOT NULL,
            PRIMARY KEY (shop, id)
        );
        CREATE INDEX deleted_products_version ON deleted_products (shop, version);
        CREATE TABLE events (
            shop TEXT NOT NULL,
            seq BIGSERIAL,
            event_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            type TEXT NOT NULL,
            "timestamp" DOUBLE PRECISION NOT NULL,
            query TEXT,
            "position" INTEGER,
            session_id TEXT,
            value DOUBLE PRECISION,
            PRIMARY KEY (shop, seq),
            UNIQUE (shop, event_id)
        );
        CREATE INDEX events_user ON events (shop, user_id, "timestamp", seq);
        CREATE INDEX events_time ON events (shop, "timestamp", seq);
        CREATE TABLE judgments (
            shop TEXT NOT NULL,
            query TEXT NOT NULL,
            product_id TEXT NOT NULL,
            grade DOUBLE PRECISION NOT NULL,
            ord BIGSERIAL,
            PRIMARY KEY (shop, query, product_id)
        );
        CREATE TABLE settings (
            shop TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (shop, key)
        );
    """),
    (2, "API keys shared by every replica", """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            record TEXT NOT NULL,
            changed_at DOUBLE PRECISION NOT NULL
        );
    """),
    (3, "impressions, event attribution, FAQ and support conversations", """
        CREATE TABLE impressions (
            shop TEXT NOT NULL,
            seq BIGSERIAL,
            request_id TEXT NOT NULL,
            "timestamp" DOUBLE PRECISION NOT NULL,
            surface TEXT NOT NULL,
            user_id TEXT,
            query TEXT,
            item_id TEXT,
            model_version TEXT,
            page INTEGER NOT NULL,
            shown TEXT NOT NULL,
            PRIMARY KEY (shop, seq),
            UNIQUE (shop, request_id)
        );
        CREATE INDEX impressions_time ON impressions (shop, "timestamp", seq);
        CREATE INDEX impressions_user ON impressions (shop, user_id);
        CREATE TABLE event_requests (
            shop TEXT NOT NULL,
            event_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            PRIMARY KEY (shop, event_id)
        );
        CREATE TABLE faq (
            shop TEXT NOT NULL,
            id TEXT NOT NULL,
            data TEXT NOT NULL,
            "position" INTEGER NOT NULL,
            ord BIGSERIAL,
            PRIMARY KEY (shop, id)
        );
        CREATE TABLE conversations (
            shop TEXT NOT NULL,
            question TEXT NOT NULL,
            faq_id TEXT NOT NULL,
            ord BIGSERIAL,
            PRIMARY KEY (shop, question, faq_id)
        );
    """),
    (4, "reviews, their sentiment, alerts", """
        CREATE TABLE reviews (
            shop TEXT NOT NULL,
            review_id TEXT NOT NULL,
            product_id TEXT NOT NULL,
            text TEXT NOT NULL,
            "timestamp" DOUBLE PRECISION NOT NULL,
            user_id TEXT,
            rating DOUBLE PRECISION,
            title TEXT,
            language TEXT,
            PRIMARY KEY (shop, review_id)
        );
        CREATE INDEX reviews_product ON reviews (shop, product_id, "timestamp");
        CREATE INDEX reviews_time ON reviews (shop, "timestamp", review_id);
        CREATE TABLE review_sentiment (
            shop TEXT NOT NULL,
            review_id TEXT NOT NULL,
            model_version TEXT NOT NULL,
            label INTEGER NOT NULL,
            score DOUBLE PRECISION NOT NULL,
            topics TEXT NOT NULL,
            PRIMARY KEY (shop, review_id)
        );
        CREATE TABLE alerts (
            shop TEXT NOT NULL,
            scope TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            data TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL,
            delivered BOOLEAN NOT NULL DEFAULT FALSE,
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            PRIMARY KEY (shop, scope, at)
        );
    """),
    (5, "impression facts: match count, latency, experiment arm", """
        CREATE TABLE impression_meta (
            shop TEXT NOT NULL,
            request_id TEXT NOT NULL,
            total INTEGER,
            latency_ms DOUBLE PRECISION,
            experiment TEXT,
            variant TEXT,
            teams TEXT,
            PRIMARY KEY (shop, request_id)
        );
        CREATE INDEX impression_meta_experiment ON impression_meta (shop, experiment);
    """),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

SHOP_TABLES = ("products", "deleted_products", "events", "judgments", "settings", "impressions", "event_requests",
               "faq", "conversations", "reviews", "review_sentiment", "alerts", "impression_meta")
"""Every table with a ``shop`` column: what dropping a shop empties."""

_LOCK_KEY = 0x5F0B_7A4C  # pg_advisory_xact_lock: one process migrates at a time


def migrate(conn: Any, where: str, upto: int = SCHEMA_VERSION) -> int:
    """Bring the database to schema ``upto``; returns the version found before. Refuses a newer one."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute("CREATE TABLE IF NOT EXISTS shoprank_schema "
                     "(version INTEGER PRIMARY KEY, note TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
        found = conn.execute("SELECT COALESCE(MAX(version), 0) FROM shoprank_schema").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise StoreVersionError(
                f"the PostgreSQL store at {where} has schema version {found}, newer than this shoprank knows "
                f"({SCHEMA_VERSION}): it was written by a newer release. Upgrade shoprank, or point --store / "
                "$SHOPRANK_STORE at another database"
            )
        for version, note, sql in MIGRATIONS:
            if found < version <= upto:
                conn.execute(sql)
                conn.execute("INSERT INTO shoprank_schema (version, note, applied_at) VALUES (%s, %s, %s)",
                             (version, note, time.time()))
    return found
