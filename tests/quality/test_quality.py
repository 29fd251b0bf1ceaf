"""The package type-checks under mypy --strict, lints clean, and the examples run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_mypy_strict() -> None:
    """mypy --strict finds nothing in dbdaora/."""
    result = _run(sys.executable, "-m", "mypy", "dbdaora")
    assert result.returncode == 0, result.stdout + result.stderr


def _tracked_python_files() -> list[str]:
    """The checkout's Python files under version control, or ``.`` outside a git checkout.

    A user's own untracked scratch files in the working tree are not the project's.
    """
    listed = _run("git", "ls-files", "-z", "--", "*.py")
    if listed.returncode != 0:
        return ["."]
    return [name for name in listed.stdout.split("\0") if name and (ROOT / name).exists()]


def test_ruff() -> None:
    """ruff finds nothing in the tracked package, tests, examples or benchmarks."""
    result = _run(sys.executable, "-m", "ruff", "check", *_tracked_python_files())
    assert result.returncode == 0, result.stdout + result.stderr


def test_quickstart_keeps_its_data_across_runs(tmp_path: Path) -> None:
    """examples/quickstart.py prints its steps; a second run finds what the first stored."""
    environment = {**os.environ, "DBDAORA_QUICKSTART_DB": str(tmp_path / "quickstart.db")}
    steps = [
        "added: Person(id='john_doe', name='John Doe', age=33)",
        "name only: Person(id='john_doe', name='John Doe', age=0)",
        "exists: True",
        "after delete: Person ('john_doe',) not found",
        "kept for the next run: Person(id='ann', name='Ann', age=41)",
        "top two: cid (12), ann (10)",
    ]
    first = _run(sys.executable, "examples/quickstart.py", env=environment)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["nothing stored by an earlier run yet", *steps]
    second = _run(sys.executable, "examples/quickstart.py", env=environment)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        "found from an earlier run: Person(id='ann', name='Ann', age=41), "
        "top two: cid (12), ann (10)",
        *steps,
    ]


def test_quickstart_runs_without_the_redis_extra(tmp_path: Path) -> None:
    """The embedded default needs neither redis-py nor hiredis (the README's quick start
    installs only the ``sql`` extra): the quick start runs with both made unimportable."""
    environment = {**os.environ, "DBDAORA_QUICKSTART_DB": str(tmp_path / "quickstart.db")}
    blocked = (
        "import runpy, sys; sys.modules.update(dict.fromkeys(['redis', 'hiredis'])); "
        "runpy.run_path('examples/quickstart.py', run_name='__main__')"
    )
    result = _run(sys.executable, "-c", blocked, env=environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "top two: cid (12), ann (10)"
