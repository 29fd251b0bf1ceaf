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


def test_repair_cost_benchmark_prints_both_rows(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks.repair_cost, tiny: get and add, repair on and off against hand-written."""
    from benchmarks import repair_cost

    figures = repair_cost.main(rounds=1, scale=0.01)
    assert set(figures) == {"get", "add"}
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:2] == ["op", "repair"]
    assert any(line.startswith("get ") for line in lines)
    assert any(line.startswith("add ") for line in lines)


def test_recovery_benchmark_times_every_fault(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks.recovery, one short run: each fault recovers and gets a figure."""
    from benchmarks import recovery

    figures = recovery.main(runs=1, outage=0.5)
    assert set(figures) == set(recovery.FAULTS)
    assert all(len(times) == 1 and times[0] >= 0 for times in figures.values())
    out = capsys.readouterr().out
    for name in recovery.FAULTS:
        assert name in out


def test_warm_benchmark_prints_both_rates(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks.warm, tiny: warm and the hand-written pipeline load every record."""
    from benchmarks import warm

    figures = warm.main(count=300, rounds=1)
    assert set(figures) == {"warm", "hand"} and all(rate > 0 for rate in figures.values())
    assert "warm / hand:" in capsys.readouterr().out


def test_otel_benchmark_prints_both_rows(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks.otel, tiny: get and get_many with tracing bare, off and on, and by hand."""
    from benchmarks import otel

    figures = otel.main(rounds=1, scale=0.01)
    assert set(figures) == {"get", "get_many 100"}
    assert all(set(sides) == set(otel.SIDES) for sides in figures.values())
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:5] == ["op", "bare", "off", "on", "hand"]
    assert any(line.startswith("get ") for line in lines)
    assert any(line.startswith("get_many 100 ") for line in lines)


def test_geo_benchmark_prints_its_row(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks.geo, tiny: near against hand-written GEOSEARCH, both finding the same members."""
    from benchmarks import geo

    figures = geo.main(rounds=1, scale=0.02)
    assert set(figures) == {"orm", "hand"} and all(time > 0 for time in figures.values())
    assert any(line.startswith("near ") for line in capsys.readouterr().out.splitlines())


def test_tracking_benchmark_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks.tracking, tiny: every figure, and no read stale after its invalidation."""
    from benchmarks import tracking

    figures = tracking.main(scale=0.02)
    assert figures["stale_after_delivery"] == 0
    assert {"cached_get_speedup", "delay_p99", "get_on_off", "add_on_off"} <= set(figures)
    assert len(capsys.readouterr().out.splitlines()) == 6


def test_shards_benchmark_prints_both_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks.shards, tiny: get and get_many on three shards against hand-written."""
    from benchmarks import shards

    figures = shards.main(rounds=1, scale=0.01)
    assert set(figures) == {"get", "get_many"} and all(ratio > 0 for ratio in figures.values())
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("get_many ") for line in lines)
