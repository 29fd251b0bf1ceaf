"""A private Redis Cluster for the tests: masters on free loopback ports, torn down at the end.

Each master is its own ``redis-server`` process with its own directory and a
cluster bus port picked like its client port (the default, port + 10000, may
be taken or out of range). ``redis-cli --cluster create`` joins them.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

import redis
from redis.cluster import RedisCluster

# For clusters whose masters a test kills: seen as failed within seconds. Others
# keep Redis's 15 s, so a busy machine never has a live master marked failed.
FAST_FAILURE = ("--cluster-node-timeout", "2000")


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed; run the README's test command")
    return path


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports: all bound at once, so none is handed out twice."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _wait(check: Callable[[], object], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except redis.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


class NodeServer:
    """One cluster-enabled ``redis-server`` process."""

    def __init__(self, port: int, bus_port: int, directory: str, options: Sequence[str]) -> None:
        self.port = port
        self.bus_port = bus_port
        self.directory = directory
        self.options = list(options)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                _binary("redis-server"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                str(self.bus_port),
                "--cluster-config-file",
                "nodes.conf",
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
        with self.client() as client:
            _wait(client.ping, f"redis-server on {self.address}")

    def client(self) -> redis.Redis:
        """A plain client on this node alone (no redirects followed)."""
        return redis.Redis(port=self.port)

    def node_id(self) -> str:
        with self.client() as client:
            return str(client.execute_command("CLUSTER", "MYID").decode())

    def role(self) -> str:
        """``master`` or ``slave``, as INFO replication says."""
        with self.client() as client:
            return str(client.info("replication")["role"])

    def kill(self) -> None:
        """SIGKILL: the node is gone, as in a crash, and its data with it."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing answers (a hung node)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class ClusterServer:
    """A running cluster of masters (no replicas)."""

    def __init__(self, nodes: list[NodeServer]) -> None:
        self.nodes = nodes

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(node.address for node in self.nodes)

    def client(self) -> RedisCluster:
        """A sync redis-py cluster client, for looking at and arranging data."""
        return RedisCluster(host="127.0.0.1", port=self.nodes[0].port)

    def live(self) -> list[NodeServer]:
        return [node for node in self.nodes if node.process is not None]

    def masters(self) -> list[NodeServer]:
        """The live nodes that serve slots now."""
        return [node for node in self.live() if node.role() == "master"]

    def replica_of(self, master: NodeServer) -> NodeServer:
        """A live replica of ``master``."""
        for node in self.live():
            with node.client() as client:
                info = client.info("replication")
            if info["role"] == "slave" and int(info["master_port"]) == master.port:
                return node
        raise LookupError(f"{master.address} has no live replica")

    def node_of(self, key: bytes) -> NodeServer:
        """The master that serves ``key``'s slot now, by CLUSTER KEYSLOT and CLUSTER SLOTS."""
        with self.live()[0].client() as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(master[1])
                    return next(node for node in self.nodes if node.port == port)
        raise LookupError(f"slot {slot} is not served")

    def migrate_slot(self, slot: int, source: NodeServer, target: NodeServer, pause: float) -> None:
        """Move ``slot`` as ``redis-cli --cluster reshard`` does, ``pause`` s between steps.

        IMPORTING on the target, MIGRATING on the source, MIGRATE of its keys a few
        at a time, then SETSLOT NODE on every master: readers meet ASK, then MOVED.
        """
        source_id, target_id = source.node_id(), target.node_id()
        with source.client() as from_, target.client() as to:
            to.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            from_.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            time.sleep(pause)
            while keys := from_.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 2):
                from_.execute_command(
                    "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys
                )
                time.sleep(pause)
        for node in [target, source, *(n for n in self.live() if n not in (source, target))]:
            with node.client() as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)

    def flushall(self) -> None:
        for node in self.live():
            with node.client() as client:
                client.flushall()


def _create(nodes: list[NodeServer], replicas: int = 0) -> None:
    created = subprocess.run(
        [
            _binary("redis-cli"),
            "--cluster",
            "create",
            *(node.address for node in nodes),
            "--cluster-replicas",
            str(replicas),
            "--cluster-yes",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if created.returncode != 0:
        raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
    for node in nodes:
        with node.client() as client:
            _wait(
                lambda client=client: client.cluster("INFO").get("cluster_state") == "ok",
                f"cluster_state:ok on {node.address}",
            )


@contextmanager
def redis_cluster(
    masters: int = 3, options: Sequence[str] = (), replicas: int = 0
) -> Iterator[ClusterServer]:
    """Start ``masters`` private cluster-enabled servers (and ``replicas`` replicas of
    each), join them, stop them at the end."""
    ports = _free_ports(2 * masters * (1 + replicas))
    with ExitStack() as stack:
        nodes = []
        for port, bus_port in zip(ports[::2], ports[1::2], strict=True):
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="dbdaora-cluster-"))
            node = NodeServer(port, bus_port, directory, options)
            stack.callback(node.stop)
            node.start()
            nodes.append(node)
        _create(nodes, replicas)
        if replicas:
            _wait(lambda: _replicas_synced(nodes, masters * replicas), "replicas in sync")
        yield ClusterServer(nodes)


def _replicas_synced(nodes: list[NodeServer], count: int) -> bool:
    synced = 0
    for node in nodes:
        with node.client() as client:
            info = client.info("replication")
        if info["role"] == "slave" and info.get("master_link_status") == "up":
            synced += 1
    return synced == count
