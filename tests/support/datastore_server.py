"""Private Cloud Datastore emulators for the tests, on free loopback ports.

The launcher is a shell script that runs Java as its child (it does not exec),
so each emulator gets its own process group; stopping it stops the Java child
first, then the launcher, and kills whatever of the group is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

from google.cloud import datastore

from tests.support.servers import free_port

EMULATOR = Path(
    "/usr/lib/google-cloud-sdk/platform/cloud-datastore-emulator/cloud_datastore_emulator"
)
PROJECT = "dbdaora-test"
STARTUP_SECONDS = 60


class DatastoreEmulator:
    """One emulator process (in memory, ``--testing``)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"localhost:{self.port}"

    def url(self, namespace: str = "", **options: str | float) -> str:
        """A ``datastore://`` URL on this emulator."""
        query = {"namespace": namespace, "emulator_host": self.host, **options}
        return f"datastore://{PROJECT}?{urlencode(query)}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(EMULATOR), "start", "--host=localhost", f"--port={self.port}", "--testing"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Datastore emulator did not start on port {self.port}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}/", timeout=1) as response:
                return bool(response.read().strip() == b"Ok")
        except OSError:
            return False

    def reset(self) -> None:
        """Wipe every entity."""
        request = urllib.request.Request(f"http://{self.host}/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def pause(self) -> None:
        """Freeze the emulator (SIGSTOP): connections stay open, nothing answers.

        Returns once every thread has stopped: a signal reaches a running thread
        only when it is next scheduled, and Java could answer one more call.
        """
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)
        pids = [self.process.pid, *_children(self.process.pid)]
        while not all(_stopped(pid) for pid in pids):
            time.sleep(0.01)

    def resume(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """Kill the whole emulator at once, as a crash would."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        """Stop the Java child, then the launcher (which ends with it); kill what lingers."""
        if self.process is None:
            return
        for child in _children(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        self.kill()

    def client(self, namespace: str | None = None) -> datastore.Client:
        """A plain google-cloud-datastore client on this emulator, found the standard way."""
        with emulator_variable(self.host):
            return datastore.Client(project=PROJECT, namespace=namespace)


def _stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is stopped (state T in /proc)."""
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(FileNotFoundError):
            if stat.read_text().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
                return False
    return True


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


@contextmanager
def emulator_variable(host: str) -> Iterator[None]:
    """``DATASTORE_EMULATOR_HOST`` set to ``host`` inside the block, restored after."""
    before = os.environ.get("DATASTORE_EMULATOR_HOST")
    os.environ["DATASTORE_EMULATOR_HOST"] = host
    try:
        yield
    finally:
        if before is None:
            del os.environ["DATASTORE_EMULATOR_HOST"]
        else:
            os.environ["DATASTORE_EMULATOR_HOST"] = before


@contextmanager
def datastore_emulator() -> Iterator[DatastoreEmulator]:
    """An emulator on a free port for the block's duration."""
    emulator = DatastoreEmulator(free_port())
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
