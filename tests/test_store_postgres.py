"""The PostgreSQL store: the shared behaviour suite, then what only a server can do wrong."""

from __future__ import annotations

import psycopg
import pytest

from shoprank.store import StoreUnavailableError, StoreVersionError, open_store
from shoprank.store import postgres as pg
from tests.store_behaviour import StoreBehaviour, ev, product
from tests.store_outcomes_behaviour import OutcomeBehaviour


class TestPostgresStore(StoreBehaviour, OutcomeBehaviour):
    @pytest.fixture
    def open_store(self, pg_url):
        return lambda: open_store(pg_url, "s")


def test_many_shops_in_one_database_stay_apart(pg_url):
    a, b = open_store(pg_url, "a"), open_store(pg_url, "b")
    a.upsert_products([product("p1", "in a")])
    b.upsert_products([product("p1", "in b"), product("p2")])
    a.append_events([ev("e1")])
    b.append_events([ev("e1"), ev("e2")])
    b.set_setting("rules", [1])
    assert (a.get_product("p1").title, b.get_product("p1").title) == ("in a", "in b")
    assert (a.counts()["events"], b.counts()["events"], a.catalog_version(), b.catalog_version()) == (1, 2, 1, 1)
    assert a.get_setting("rules") is None
    backend = pg.PostgresBackend(pg_url)
    assert backend.shop_names() == ["a", "b"]
    backend.drop("b")
    assert backend.shop_names() == ["a"] and not backend.exists("b") and a.counts()["events"] == 1


def test_the_schema_is_migrated_on_start_and_a_newer_one_refused(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a database left by the first release
        assert pg.migrate(conn, "test", upto=1) == 0
        assert conn.execute("SELECT to_regclass('api_keys')").fetchone()[0] is None
    open_store(pg_url, "s").append_events([ev("e1")])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM shoprank_schema ORDER BY version")]
        assert versions == list(range(1, pg.SCHEMA_VERSION + 1))
        assert conn.execute("SELECT to_regclass('api_keys')").fetchone()[0] == "api_keys"
        conn.execute("INSERT INTO shoprank_schema VALUES (%s, 'from the future', 0)", (pg.SCHEMA_VERSION + 1,))
    pg.close_database(pg_url)
    with pytest.raises(StoreVersionError, match=f"schema version {pg.SCHEMA_VERSION + 1}, newer"):
        open_store(pg_url, "s")


def test_a_server_that_is_down_or_a_wrong_url_gets_a_clear_error(pg_server):
    down = pg_server.rsplit(":", 1)[0] + ":1/postgres"
    with pytest.raises(StoreUnavailableError, match="cannot reach the PostgreSQL store at .*server is running"):
        open_store(down, "s")
    with pytest.raises(StoreUnavailableError, match='database "no_such_db" does not exist'):
        open_store(pg_server.rsplit("/", 1)[0] + "/no_such_db", "s")
    with pytest.raises(StoreUnavailableError, match="not valid"):
        open_store("postgresql://127.0.0.1:5432/db?nonsense=1", "s")


def test_a_password_never_shows_in_messages():
    assert pg.redact("postgresql://shop:s3cret@db.internal:5433/prod") == "postgresql://shop:***@db.internal:5433/prod"


def test_a_connection_lost_mid_batch_stores_nothing_and_says_retry(pg_url, monkeypatch):
    store = open_store(pg_url, "s")
    store.append_events([ev("before")])
    original = pg.copy_rows

    def copy_then_lose_the_connection(cur, statement, rows):
        original(cur, statement, rows)  # the rows are in the server's staging table...
        with psycopg.connect(pg_url, autocommit=True) as other:  # ...when the connection dies
            other.execute("SELECT pg_terminate_backend(%s)", (cur.connection.info.backend_pid,))

    monkeypatch.setattr(pg, "copy_rows", copy_then_lose_the_connection)
    batch = [ev(f"e{i}", t=i) for i in range(pg.COPY_FROM + 10)]
    with pytest.raises(StoreUnavailableError, match="nothing of it was stored. Retry"):
        store.append_events(batch)
    with pytest.raises(StoreUnavailableError):
        store.upsert_products([product(f"p{i}") for i in range(pg.COPY_FROM)])
    monkeypatch.setattr(pg, "copy_rows", original)
    assert store.counts()["events"] == 1 and store.catalog_version() == 0  # nothing half-stored
    assert store.append_events(batch).stored == len(batch)  # the retry goes through, on a fresh connection


def test_keys_live_in_the_shared_store_for_every_replica(pg_url, tmp_path, monkeypatch):
    from shoprank import keys as keys_module
    from shoprank.keys import KeyStore

    monkeypatch.setattr(keys_module, "SHARED_REFRESH_S", 3600.0)
    one, other = KeyStore(tmp_path / "a", store=pg_url), KeyStore(tmp_path / "b", store=pg_url)
    key, record = one.create("search", "s", name="from replica one")
    assert other.verify(key) == record  # the other replica's first look reads the table
    assert not (tmp_path / "a" / "keys.json").exists()
    other.revoke(record.id)
    assert one.verify(key) is not None  # one's view may be SHARED_REFRESH_S old ...
    monkeypatch.setattr(keys_module, "SHARED_REFRESH_S", 0.0)
    assert one.verify(key) is None  # ... and then the revocation holds there too
    assert [k.revoked_at is not None for k in one.list_keys()] == [True]


def test_connections_dropped_by_a_server_restart_are_replaced(pg_url, monkeypatch):
    store = open_store(pg_url, "s")
    store.append_events([ev("e1")])
    with psycopg.connect(pg_url, autocommit=True) as admin:  # what a restart does to every pooled connection
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    monkeypatch.setattr(pg, "CHECK_IDLE_S", 0.0)
    assert store.counts()["events"] == 1 and store.append_events([ev("e2")]).stored == 1


def test_the_api_answers_503_retry_when_the_connection_is_lost_mid_batch(pg_url, tmp_path, monkeypatch):
    import anyio
    import httpx

    from shoprank.keys import KeyStore
    from shoprank.serving import ServingConfig, create_app
    from tests.support.fakes import FAKE_LOADERS, tiny_shop

    monkeypatch.setenv("SHOPRANK_STORE", pg_url)
    tiny_shop(tmp_path, "tiny")
    key, _ = KeyStore(tmp_path).create("admin")
    app = create_app(tmp_path, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    app.state.registry.load_all()
    original = pg.copy_rows

    def copy_then_lose_the_connection(cur, statement, rows):
        original(cur, statement, rows)
        with psycopg.connect(pg_url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (cur.connection.info.backend_pid,))

    monkeypatch.setattr(pg, "copy_rows", copy_then_lose_the_connection)
    events = [{"event_id": f"h{i}", "user_id": "u1", "item_id": "garden-0-0", "type": "view",
               "timestamp": 1_700_000_000 + i} for i in range(pg.COPY_FROM)]

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t",
                                     headers={"Authorization": f"Bearer {key}"}) as c:
            return await c.post("/shops/tiny/events", json={"events": events})

    try:
        answer = anyio.run(post)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert answer.json()["error"]["code"] == "storage_unavailable"
        monkeypatch.setattr(pg, "copy_rows", original)
        assert app.state.registry.get("tiny").store.counts()["events"] == 24  # the seed events only
        assert anyio.run(post).json() == {"stored": len(events), "duplicates": 0}  # the retry
    finally:
        app.state.registry.close()


def test_every_command_takes_store_url(pg_url, tmp_path, capsys, monkeypatch):
    import json
    import os

    from shoprank.cli.main import main

    monkeypatch.delenv("SHOPRANK_STORE", raising=False)
    products = tmp_path / "p.jsonl"
    products.write_text("".join(json.dumps({"id": f"p{i}", "title": f"Drill {i}"}) + "\n" for i in range(3)))
    home = str(tmp_path / "home")
    assert main(["ingest", "products", str(products), "--shop", "s", "--home", home, "--store", pg_url,
                 "--quiet"]) == 0
    assert main(["keys", "create", "--scope", "admin", "--home", home, "--store", pg_url]) == 0
    capsys.readouterr()
    assert main(["shops", "--json", "--home", home, "--store", pg_url]) == 0
    assert [(r["shop"], r["products"]) for r in json.loads(capsys.readouterr().out)] == [("s", 3)]
    assert main(["keys", "list", "--json", "--home", home, "--store", pg_url]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
    assert not (tmp_path / "home" / "s" / "store.sqlite").exists() and not (tmp_path / "home" / "keys.json").exists()
    assert "SHOPRANK_STORE" not in os.environ  # the option holds for its command only
    assert main(["shops", "--home", home]) == 0 and "no shops" in capsys.readouterr().out  # embedded: empty
    assert main(["shops", "--home", home, "--store", "mysql://x"]) == 1
    assert "is not understood" in capsys.readouterr().err
    assert main(["shops", "--home", home, "--store", pg_url.rsplit(":", 1)[0] + ":1/x"]) == 1
    assert "cannot reach the PostgreSQL store" in capsys.readouterr().err
