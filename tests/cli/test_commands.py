"""The ``dbdaora`` command line, run as a user runs it: a subprocess over a settings module
and a models module in a directory of their own, against a private redis-server and a
SQLite file."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis

from dbdaora.backends.fallback.sql.store import SQLFallback
from dbdaora.backends.urls import open_fallback
from tests.support.servers import RedisServer, redis_server

ROOT = Path(__file__).resolve().parents[2]
MODELS = """
from dbdaora import Field, Key, Model, Score, SortedMember
from dbdaora import GeoMember, GeoModel, Latitude, Longitude
from dbdaora import Field, Flag, FlagModel, Key, Model, Score, SortedMember


class Customer(Model):
    id: int = Key()
    name: str = Field()
    city: str = Field(default="")

    class Meta:
        expire_time = 600


class Leaderboard(Model):
    board: str = Key()
    player: str = SortedMember()
    points: float = Score()


class Stop(GeoModel):
    line: str = Key()
    name: str = GeoMember()
    latitude: float = Latitude()
    longitude: float = Longitude()


class Seen(FlagModel):
    user: str = Key()
    item: int = Key()
    seen: bool = Flag(default=True)
"""
COUNT = 2000


class Cli:
    """Runs ``python -m dbdaora`` with the user's directory on PYTHONPATH."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(directory), str(ROOT)]),
            "DBDAORA_SETTINGS": "cli_settings",
            "COLUMNS": "200",
        }

    def settings(self, memory: str, fallback: str) -> None:
        text = f"MEMORY = {memory!r}\nFALLBACK = {fallback!r}\n"
        (self.directory / "cli_settings.py").write_text(text)

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return subprocess.run(
            [sys.executable, "-m", "dbdaora", *args],
            capture_output=True,
            text=True,
            cwd=self.directory,
            env={**self.env, **(env or {})},
            timeout=60,
        )


def _one_line_error(result: Any) -> str:
    """The failure's single stderr line, having checked it is the only one, no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    line: str = lines[0]
    assert line.startswith("error: ")
    return line


@pytest.fixture
def models(tmp_path: Path) -> ModuleType:
    """The user's models module, written to disk and imported here too, to seed records."""
    (tmp_path / "cli_models.py").write_text(MODELS)
    spec = importlib.util.spec_from_file_location("cli_models", tmp_path / "cli_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'records.db'}"


@pytest.fixture
def cli(tmp_path: Path, redis_proc: RedisServer, raw_redis: redis.Redis, sqlite_url: str) -> Cli:
    runner = Cli(tmp_path)
    runner.settings(redis_proc.url, sqlite_url)
    return runner


async def _seed(models: ModuleType, url: str) -> None:
    """COUNT customers and three leaderboards in the SQLite fallback."""
    store = SQLFallback(url)
    customers = [models.Customer(id=i, name=f"c{i}", city="Recife") for i in range(COUNT)]
    await store.put_many(models.Customer._meta, [str(c.id) for c in customers], customers)
    for board in ("east", "north", "west"):
        pairs = [(f"p{i}", float(i)) for i in range(5)]
        await store.add_members(models.Leaderboard._meta, board, pairs, None)
    await store.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server with a password, this test's alone: it may be stopped."""
    with redis_server() as server:
        client = server.client()
        client.config_set("requirepass", "s3cret")
        client.close()
        yield server


def test_check_names_each_store_then_one_line_per_failure(
    cli: Cli, own_redis: RedisServer, sqlite_url: str
) -> None:
    """check prints each store's masked URL, version and round trip; a wrong password and
    a stopped server each end it with one line naming the store and the cause."""
    good = f"redis://:s3cret@127.0.0.1:{own_redis.port}/0"
    result = cli("check", "--memory", good)
    assert result.returncode == 0, result.stderr
    memory, fallback = result.stdout.strip().splitlines()
    assert memory.split()[:3] == [
        "memory",
        f"redis://:***@127.0.0.1:{own_redis.port}/0",
        "Redis",
    ]
    assert (
        memory.split()[3]
        == redis.Redis(port=own_redis.port, password="s3cret").info()["redis_version"]
    )
    assert memory.endswith(" ms") and "s3cret" not in result.stdout
    assert fallback.split()[:3] == ["fallback", sqlite_url, "SQLite"] and fallback.endswith(" ms")

    bad = cli("check", "--memory", good.replace("s3cret", "wrong"))
    line = _one_line_error(bad)
    assert "memory unreachable: authentication failed" in line and ":***@" in line
    assert "wrong" not in bad.stderr and bad.stdout.startswith("fallback ")

    own_redis.stop()
    line = _one_line_error(cli("check", "--memory", good))
    assert line.startswith("error: memory unreachable: connection refused")
    assert f"redis://:***@127.0.0.1:{own_redis.port}/0" in line


def test_check_of_a_hung_redis_says_timeout(cli: Cli, redis_proc: RedisServer) -> None:
    """A Redis that accepts connections and never answers fails check with a timeout."""
    redis_proc.pause()
    try:
        line = _one_line_error(cli("check", "--timeout", "0.5"))
    finally:
        redis_proc.resume()
    assert line == f"error: memory unreachable: timeout ({redis_proc.url})"


async def test_warm_fills_every_record_with_its_ttl_and_keeps_newer_copies(
    cli: Cli, models: ModuleType, raw_redis: redis.Redis, sqlite_url: str
) -> None:
    """warm of 2,000 records into an empty Redis: each is then a hash with the model's TTL,
    except a copy written in Redis before, newer than its record, which stays as it was."""
    await _seed(models, sqlite_url)
    raw_redis.hset("customer:7", mapping={"id": "7", "name": "newer", "city": "Natal"})
    raw_redis.set("customer:not-found:8", b"1")
    result = cli("warm", "cli_models:Customer", "--page", "300")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"warmed {COUNT:,} Customer records: {COUNT - 2:,} filled, 1 already in Redis, "
        "1 marked not found in Redis (dbdaora repair clears such markers)"
    )
    keys = sorted(raw_redis.scan_iter(match="customer:*", count=1000))
    expected = [f"customer:{i}".encode() for i in range(COUNT) if i != 8]
    assert keys == sorted([*expected, b"customer:not-found:8"])
    assert raw_redis.hgetall("customer:1999") == {
        b"id": b"1999",
        b"name": b"c1999",
        b"city": b"Recife",
    }
    ttls = {key: raw_redis.ttl(key) for key in expected if key != b"customer:7"}
    assert all(500 < ttl <= 600 for ttl in ttls.values())
    assert raw_redis.hgetall("customer:7")[b"name"] == b"newer"

    result = cli("warm", "cli_models:Leaderboard")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "warmed 3 Leaderboard records: 3 filled, 0 already in Redis"
    assert raw_redis.zrange("leaderboard:north", 0, -1, withscores=True)[-1] == (b"p4", 4.0)
    lines = cli("inspect", "cli_models:Leaderboard", "north").stdout.splitlines()
    assert lines[1].startswith("  redis     leaderboard:north (zset, ttl ")
    assert lines[1].endswith("s): p0=0  p1=1  p2=2  p3=3  p4=4") and lines[4] == "  verdict   agree"


async def test_repair_deletes_tampered_copies_and_dry_run_changes_nothing(
    cli: Cli, models: ModuleType, raw_redis: redis.Redis, sqlite_url: str
) -> None:
    """After warming, two tampered copies, a copy with no record and a not-found marker
    over a record are counted; --dry-run deletes nothing, repair deletes exactly those."""
    await _seed(models, sqlite_url)
    assert cli("warm", "cli_models:Customer").returncode == 0
    raw_redis.hset("customer:5", "name", "tampered")
    raw_redis.hdel("customer:6", "city")
    raw_redis.hset("customer:99999", mapping={"id": "99999", "name": "ghost"})
    raw_redis.set("customer:not-found:8", b"1")
    raw_redis.set("customer:not-found:424242", b"1")
    before = {key: raw_redis.dump(key) for key in raw_redis.scan_iter(count=1000)}

    dry = cli("repair", "cli_models:Customer", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip().splitlines() == [
        f"Customer: {COUNT - 1:,} agree, 3 differ, 1 without a fallback record, 0 in flight",
        "would delete 4 Redis copies",
    ]
    assert {key: raw_redis.dump(key) for key in raw_redis.scan_iter(count=1000)} == before

    done = cli("repair", "cli_models:Customer")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "deleted 4 Redis copies"
    gone = {b"customer:5", b"customer:6", b"customer:99999", b"customer:not-found:8"}
    assert set(before) - set(raw_redis.scan_iter(count=1000)) == gone
    again = cli("repair", "cli_models:Customer")
    assert again.stdout.startswith(f"Customer: {COUNT - 1:,} agree, 0 differ, 0 without")


async def test_inspect_shows_the_copy_its_marker_the_record_and_the_verdict(
    cli: Cli, models: ModuleType, raw_redis: redis.Redis, sqlite_url: str
) -> None:
    """inspect of one key: the Redis hash with its fields and TTL, the marker, the
    fallback's record and whether they agree; then of a tampered and an absent key."""
    await _seed(models, sqlite_url)
    assert cli("warm", "cli_models:Customer").returncode == 0
    result = cli("inspect", "cli_models:Customer", "12")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "Customer 12"
    assert lines[1].startswith("  redis     customer:12 (hash, ttl ")
    assert lines[1].endswith("s): city='Recife'  id='12'  name='c12'")
    assert lines[2] == "  marker    customer:not-found:12: absent"
    assert lines[3] == "  fallback  Customer(id=12, name='c12', city='Recife')"
    assert lines[4] == "  verdict   agree"

    raw_redis.hset("customer:13", "name", "tampered")
    raw_redis.delete("customer:14")
    lines = cli("inspect", "cli_models:Customer", "13", "14").stdout.splitlines()
    assert lines[4] == "  verdict   differ" and lines[9] == "  verdict   not in Redis"


async def test_warm_repair_and_inspect_of_flags(
    cli: Cli, models: ModuleType, raw_redis: redis.Redis, sqlite_url: str
) -> None:
    """Flags: warm fills ``1`` for each record (a ``0`` hiding one is counted as marked),
    repair judges ``1`` against a record and ``0`` against none, inspect shows both."""
    store = SQLFallback(sqlite_url)
    flags = [models.Seen(user="u", item=i) for i in range(10)]
    await store.put_many(models.Seen._meta, [f"u:{i}" for i in range(10)], flags)
    await store.close()
    raw_redis.set("seen:u:3", b"0")
    result = cli("warm", "cli_models:Seen")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "warmed 10 Seen records: 9 filled, 0 already in Redis, "
        "1 marked not found in Redis (dbdaora repair clears such markers)"
    )
    assert raw_redis.get("seen:u:9") == b"1" and 3500 < raw_redis.ttl("seen:u:9") <= 3600
    raw_redis.set("seen:u:5", b"x")
    raw_redis.set("seen:u:99", b"1")
    raw_redis.set("seen:u:98", b"0")

    done = cli("repair", "cli_models:Seen")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [
        "Seen: 9 agree, 2 differ, 1 without a fallback record, 0 in flight",
        "deleted 3 Redis copies",
    ]
    assert {raw_redis.get(f"seen:u:{i}") for i in (3, 5, 99)} == {None}

    lines = cli("inspect", "cli_models:Seen", "u:0", "u:98").stdout.splitlines()
    assert lines[1].startswith("  redis     seen:u:0 (string, ttl ") and lines[1].endswith(": 1")
    assert lines[3:5] == ["  fallback  Seen(user='u', item=0, seen=True)", "  verdict   agree"]
    assert lines[8:] == ["  fallback  none", "  verdict   agree"]


def test_bad_paths_and_settings_each_give_one_line(cli: Cli, tmp_path: Path) -> None:
    """A model path without ':', a module that does not import, a missing name, a name
    that is no model, a settings module that does not import, a bad URL and a key of
    the wrong type each end the command with one line, no traceback."""
    (tmp_path / "broken.py").write_text("import no_such_module_anywhere\n")
    (tmp_path / "cli_models.py").write_text(MODELS + "\nNOT_A_MODEL = 3\n")
    cases = {
        ("warm", "cli_models"): "expected a model as module:Model, got 'cli_models'",
        ("warm", "nowhere:Customer"): "cannot import 'nowhere': ModuleNotFoundError",
        ("warm", "broken:Customer"): "cannot import 'broken': ModuleNotFoundError",
        ("repair", "cli_models:Nobody"): "module 'cli_models' has no 'Nobody'",
        ("inspect", "cli_models:NOT_A_MODEL", "1"): "'cli_models:NOT_A_MODEL' is 3, not a",
        ("inspect", "cli_models:Customer", "abc"): "Customer: 'abc' is no key of the model",
        ("check", "--memory", "mysql://u:pw@h/db"): "no memory (Redis-side) backend for",
        ("inspect", "cli_models:Customer", "1", "--memory", "redis://h:port/0"): "bad Redis URL",
    }
    for args, expected in cases.items():
        line = _one_line_error(cli(*args))
        assert expected in line, (args, line)
    line = _one_line_error(cli("check", env={"DBDAORA_SETTINGS": "no_settings_here"}))
    assert "DBDAORA_SETTINGS='no_settings_here' cannot be imported" in line
    assert "pw" not in cli("check", "--memory", "mysql://u:pw@h/db").stderr


def test_without_the_extra_python_m_dbdaora_says_what_to_install(cli: Cli) -> None:
    """Where typer cannot be imported, python -m dbdaora prints one line and exits 1."""
    blocked = (
        "import sys, runpy; sys.modules['typer'] = None; "
        "runpy.run_module('dbdaora', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocked], capture_output=True, text=True, env=cli.env, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "the dbdaora command line needs its extra: pip install 'dbdaora[cli]'"
    )


def test_check_names_postgresql_and_datastore_fallbacks(
    cli: Cli, postgres_url: str, datastore_proc: Any
) -> None:
    """check says which PostgreSQL version answers, and which Datastore it reached."""
    result = cli("check", "--fallback", postgres_url)
    assert result.returncode == 0, result.stderr
    fallback = result.stdout.splitlines()[1].split()
    assert fallback[:3] == ["fallback", postgres_url, "PostgreSQL"]
    assert fallback[3][0].isdigit() and fallback[-1] == "ms"
    url = datastore_proc.url("cli")
    result = cli("check", "--fallback", url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith(
        f"fallback  {url}  Cloud Datastore (emulator at {datastore_proc.host}), "
        "project dbdaora-test, namespace cli"
    )


@pytest.mark.parametrize("deployment", ["cluster", "shards"])
async def test_warm_repair_and_inspect_on_a_cluster(
    cli: Cli, models: ModuleType, sqlite_url: str, deployment: str, request: pytest.FixtureRequest
) -> None:
    """On a Redis Cluster, and on 0.27's shards, warm fills every record and repair scans
    every master (every shard)."""
    servers = request.getfixturevalue(f"{deployment}_proc")
    raw_cluster = request.getfixturevalue(f"raw_{deployment}")
    await _seed(models, sqlite_url)
    cli.settings(servers.url, sqlite_url)
    result = cli("warm", "cli_models:Customer")
    assert result.returncode == 0, result.stderr
    assert raw_cluster.hgetall("customer:1234")[b"name"] == b"c1234"
    raw_cluster.hset("customer:5", "name", "tampered")
    raw_cluster.set("customer:not-found:9", b"1")
    result = cli("repair", "cli_models:Customer")
    assert result.stdout.splitlines() == [
        f"Customer: {COUNT - 1:,} agree, 2 differ, 0 without a fallback record, 0 in flight",
        "deleted 2 Redis copies",
    ]
    assert not raw_cluster.exists("customer:5") and not raw_cluster.exists("customer:not-found:9")
    lines = cli("inspect", "cli_models:Customer", "6").stdout.splitlines()
    assert lines[4] == "  verdict   agree"


@pytest.mark.parametrize("fallback", ["sqlite", "datastore"])
async def test_warm_repair_and_inspect_a_geospatial_model(
    cli: Cli,
    models: ModuleType,
    raw_redis: redis.Redis,
    redis_proc: RedisServer,
    sqlite_url: str,
    fallback: str,
    request: pytest.FixtureRequest,
) -> None:
    """warm fills each geo set whole from its member records (SQL rows, or Datastore
    entities, one per member); repair and inspect compare the set with GEOADD's scores of
    the fallback's coordinates, and see a moved member."""
    url = sqlite_url
    if fallback == "datastore":
        emulator = request.getfixturevalue("datastore_proc")
        emulator.reset()
        url = emulator.url("cli", timeout=30)
        cli.settings(redis_proc.url, url)
    store = open_fallback(url)
    for line in ("a", "b"):
        points = [(f"s{i}", 2.0 + i / 100, 48.0 + i / 100) for i in range(4)]
        await store.add_points(models.Stop._meta, line, points)
    await store.close()
    result = cli("warm", "cli_models:Stop")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "warmed 2 Stop records: 2 filled, 0 already in Redis"
    assert raw_redis.geopos("stop:a", "s3")[0] == pytest.approx((2.03, 48.03), abs=1e-5)
    raw_redis.geoadd("stop:b", (3.0, 49.0, "s1"))
    dry = cli("repair", "cli_models:Stop", "--dry-run")
    assert (
        dry.stdout.splitlines()[0]
        == "Stop: 1 agree, 1 differ, 0 without a fallback record, 0 in flight"
    )
    lines = cli("inspect", "cli_models:Stop", "a").stdout.splitlines()
    assert lines[1].startswith("  redis     stop:a (zset, ttl ") and lines[4] == "  verdict   agree"
