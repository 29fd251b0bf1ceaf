"""The benchmarks run end to end; their figures are not asserted (they are not timed tests)."""

from __future__ import annotations

import pytest

from benchmarks import speed


def test_speed_benchmark_prints_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks.speed, tiny, completes on its private servers and prints one line per row."""
    speed.main(rounds=1, scale=0.01)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == [
        "operation",
        "ORM",
        "median",
        "hand",
        "median",
        "ratio",
        "target",
        "met",
    ]
    for name in speed.ROWS:
        assert any(line.startswith(f"{name} ") for line in lines), name
