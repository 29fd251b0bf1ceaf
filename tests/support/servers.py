"""Private servers for the tests: started on free loopback ports, stopped at the end.

Tests never touch the machine's shared Redis or PostgreSQL data.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One private ``redis-server`` process."""

    def __init__(self, port: int, directory: str, options: Sequence[str] = ()) -> None:
        self.port = port
        self.directory = directory
        self.options = list(options)  # after the defaults, so they override them
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; run the README's test command")
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def kill(self) -> None:
        """SIGKILL: the server is gone, as in a crash; its data with it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing answers (a hung server)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


@contextmanager
def redis_server(options: Sequence[str] = ()) -> Iterator[RedisServer]:
    """A private redis-server, no persistence unless ``options`` turn it on."""
    with tempfile.TemporaryDirectory(prefix="dbdaora-redis-") as directory:
        server = RedisServer(free_port(), directory, options)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def _postgres_binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if found is None:
        raise RuntimeError(f"{name} is not installed; run the README's test command")
    return found


class PostgresServer:
    """One private PostgreSQL cluster (initdb into a temporary directory, trust auth).

    Run as the ``postgres`` user when the tests run as root, as PostgreSQL refuses root.
    """

    def __init__(self, port: int, directory: str) -> None:
        self.port = port
        self.directory = directory
        self.data = os.path.join(directory, "data")
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, statement: str, database: str = "postgres") -> None:
        """Run SQL as the superuser."""
        subprocess.run(
            [
                _postgres_binary("psql"),
                *("--host", "127.0.0.1", "--port", str(self.port), "--username", "postgres"),
                *("--dbname", database, "--quiet", "--set", "ON_ERROR_STOP=1"),
                *("--command", statement),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as_owner, *command], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        if not os.path.exists(self.data):
            self._run(
                _postgres_binary("initdb"),
                "--pgdata",
                self.data,
                "--username",
                "postgres",
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-sync",
            )
        # fsync=off: tests stop the server, never the machine, and what PostgreSQL has
        # written (its WAL included) survives the process being killed.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.directory} -c fsync=off"
        )
        self._run(
            _postgres_binary("pg_ctl"),
            "--pgdata",
            self.data,
            "--options",
            options,
            "--log",
            os.path.join(self.directory, "postgres.log"),
            "--wait",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``immediate`` kills it as a crash would (recovery on start)."""
        self._run(
            _postgres_binary("pg_ctl"), "--pgdata", self.data, "--mode", mode, "--wait", "stop"
        )

    def running(self) -> bool:
        return os.path.exists(os.path.join(self.data, "postmaster.pid"))


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    with tempfile.TemporaryDirectory(prefix="dbdaora-postgres-") as directory:
        server = PostgresServer(free_port(), directory)
        server.start()
        try:
            yield server
        finally:
            if server.running():
                server.stop()
