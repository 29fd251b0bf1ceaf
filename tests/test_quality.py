"""The package type-checks under mypy --strict, lints clean, and the examples run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_mypy_strict() -> None:
    """mypy --strict finds nothing in dbdaora/."""
    result = _run(sys.executable, "-m", "mypy", "dbdaora")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff() -> None:
    """ruff finds nothing in the package, tests, examples or benchmarks."""
    result = _run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_quickstart_prints_what_it_did() -> None:
    """examples/quickstart.py runs on the embedded default and prints its steps."""
    result = _run(sys.executable, "examples/quickstart.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "added: Person(id='john_doe', name='John Doe', age=33)",
        "name only: Person(id='john_doe', name='John Doe', age=0)",
        "exists: True",
        "after delete: Person ('john_doe',) not found",
        "top two: cid (12), ann (10)",
    ]
