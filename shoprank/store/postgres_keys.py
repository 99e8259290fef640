"""API key records in the shared PostgreSQL store, so every replica knows every key (and every revocation)."""

from __future__ import annotations

import json
import time
from typing import Any


class PostgresKeyRecords:
    """The ``api_keys`` table: one JSON record per key id, written one record at a time (no lost updates
    between replicas creating or revoking keys at once)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def load(self) -> list[dict[str, Any]]:
        with self.db.connection("reading API keys") as conn:
            return [json.loads(r[0]) for r in conn.execute("SELECT record FROM api_keys ORDER BY id")]

    def save(self, record: dict[str, Any]) -> None:
        with self.db.connection("writing an API key") as conn:
            conn.execute("INSERT INTO api_keys (id, record, changed_at) VALUES (%s, %s, %s) ON CONFLICT (id) "
                         "DO UPDATE SET record = EXCLUDED.record, changed_at = EXCLUDED.changed_at",
                         (record["id"], json.dumps(record), time.time()))
