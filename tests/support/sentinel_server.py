"""Private Redis Sentinel for the tests: a master, a replica and three sentinels.

Every process listens on a free loopback port. The data nodes are ``RedisServer``
processes (``servers``); the replica is made one with ``REPLICAOF`` once it is
up. Each sentinel is ``redis-server <conf> --sentinel`` with its conf in a
temporary directory (Sentinel rewrites it). Failures are seen after
``DOWN_AFTER_MS`` and a failover may follow the last one after twice
``FAILOVER_TIMEOUT_MS``, so a test can kill the master, watch the replica take
over, bring the old master back as a replica, and do it again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import redis

from tests.support.cluster_server import _free_ports
from tests.support.servers import RedisServer

MASTER_NAME = "dbdaora-master"
QUORUM = 2
# Sentinel pings every second at most: a master must miss more than one ping to
# count as down, or a sentinel that just switched to a new master may find it
# down before its first ping has had an answer, and fail over again.
DOWN_AFTER_MS = 1500
FAILOVER_TIMEOUT_MS = 2000


def _wait(
    check: Callable[[], object],
    what: str,
    seconds: float = 30,
    last: Callable[[], object] = lambda: None,
) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except (redis.ConnectionError, redis.ResponseError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}; last seen: {last()}")
        time.sleep(0.05)


class SentinelProcess:
    """One ``redis-server --sentinel`` process watching ``MASTER_NAME``."""

    def __init__(self, port: int, directory: str, master_port: int) -> None:
        self.port = port
        self.directory = directory
        self.conf = os.path.join(directory, "sentinel.conf")
        with open(self.conf, "w") as conf:
            conf.write(
                f"port {port}\n"
                "bind 127.0.0.1\n"
                f"dir {directory}\n"
                f"logfile {os.path.join(directory, 'sentinel.log')}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {QUORUM}\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; run the README's test command")
        self.process = subprocess.Popen(
            [binary, self.conf, "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with self.client() as client:
            _wait(client.ping, f"sentinel on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)

    def state(self) -> dict[str, str]:
        """What this sentinel knows of the master: ``SENTINEL MASTER`` as a dict."""
        with self.client() as client:
            reply = client.execute_command("SENTINEL", "MASTER", MASTER_NAME)
        if isinstance(reply, dict):
            return reply
        items = iter(reply)
        return dict(zip(items, items, strict=True))


class SentinelServer:
    """The running deployment: two data nodes (one master) and three sentinels."""

    def __init__(self, nodes: list[RedisServer], sentinels: list[SentinelProcess]) -> None:
        self.nodes = nodes
        self.sentinels = sentinels

    def url(self, db: int = 0, scheme: str = "redis+sentinel") -> str:
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"{scheme}://{hosts}/{MASTER_NAME}/{db}"

    def master_port(self) -> int:
        """The master's port, as the first sentinel reports it."""
        return int(self.sentinels[0].state()["port"])

    def master(self) -> RedisServer:
        port = self.master_port()
        return next(node for node in self.nodes if node.port == port)

    def replica(self) -> RedisServer:
        port = self.master_port()
        return next(node for node in self.nodes if node.port != port)

    def wait_promoted(self, old_port: int, seconds: float = 30) -> int:
        """Wait until every sentinel reports a master other than ``old_port``; its port."""
        _wait(
            lambda: all(int(s.state()["port"]) != old_port for s in self.sentinels),
            "the sentinels to promote the replica",
            seconds,
        )
        return self.master_port()

    def restore(self) -> None:
        """Bring back any killed node as a replica of the current master, and wait
        until the deployment can fail over again: each sentinel agrees on the
        master, sees its replica and the two other sentinels, and the replica is
        in sync."""
        master = self.master()
        for node in self.nodes:
            if node.process is None:
                _start(node)
            if node is not master:
                with node.client() as client:
                    client.execute_command("REPLICAOF", "127.0.0.1", master.port)
        self.wait_stable()

    def wait_stable(self) -> None:
        seen: list[object] = []

        def settled() -> bool:
            master, replica = self.master(), self.replica()
            seen.clear()
            seen.append(("master", master.port))
            for sentinel in self.sentinels:
                state = sentinel.state()
                with sentinel.client() as client:
                    replicas = client.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
                flags = [_flags(entry) for entry in replicas]
                seen.append((sentinel.port, state["port"], state["flags"], flags))
                if int(state["port"]) != master.port or state["flags"] != "master":
                    return False
                if int(state["num-other-sentinels"]) < 2 or "slave" not in flags:
                    return False
            with replica.client() as client:
                info = client.info("replication")
            seen.append((replica.port, info["role"], info.get("master_link_status")))
            return bool(
                info["role"] == "slave"
                and info["master_port"] == master.port
                and info["master_link_status"] == "up"
                and not info.get("master_sync_in_progress")
            )

        try:
            _wait(settled, "the Sentinel deployment to settle", 15, lambda: seen)
        except RuntimeError:
            # A sentinel that went into TILT on a loaded machine may not rediscover
            # its peers of a new master for a long while: have each start afresh.
            for sentinel in self.sentinels:
                with sentinel.client() as client:
                    client.execute_command("SENTINEL", "RESET", MASTER_NAME)
            _wait(settled, "the Sentinel deployment to settle", 60, lambda: seen)

    def flushall(self) -> None:
        with self.master().client() as client:
            client.flushall()
            client.wait(1, 2000)


def _start(node: RedisServer) -> None:
    node.start()
    with node.client() as client:
        # Redis 7 waits 5 s for more replicas before a diskless full sync: start at once.
        client.config_set("repl-diskless-sync-delay", 0)


def _flags(entry: object) -> str:
    if isinstance(entry, dict):
        return str(entry.get("flags", ""))
    assert isinstance(entry, list)
    items = iter(entry)
    return str(dict(zip(items, items, strict=True)).get("flags", ""))


@contextmanager
def redis_sentinel() -> Iterator[SentinelServer]:
    """Start a master, its replica and three sentinels; stop them all at the end."""
    ports = _free_ports(5)
    with ExitStack() as stack:
        nodes = []
        for port in ports[:2]:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="dbdaora-sentinel-"))
            node = RedisServer(port, directory)
            stack.callback(node.stop)
            _start(node)
            nodes.append(node)
        with nodes[1].client() as client:
            client.execute_command("REPLICAOF", "127.0.0.1", nodes[0].port)
        sentinels = []
        for port in ports[2:]:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="dbdaora-sentinel-"))
            sentinel = SentinelProcess(port, directory, nodes[0].port)
            stack.callback(sentinel.stop)
            sentinel.start()
            sentinels.append(sentinel)
        server = SentinelServer(nodes, sentinels)
        server.wait_stable()
        yield server
