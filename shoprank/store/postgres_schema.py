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
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

SHOP_TABLES = ("products", "deleted_products", "events", "judgments", "settings")
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
