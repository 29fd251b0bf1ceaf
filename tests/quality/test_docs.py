"""The documentation site builds under ``mkdocs build --strict``, and every code block in it (and
in the README) runs.

How the code blocks are run (the convention the pages are written to):

- Each page's ```` ```python ```` blocks run in order, in one namespace, in one
  event loop: a block may use what an earlier block on the same page defined, so
  a page reads as one session at a prompt. Top-level ``await`` works, as in
  ``python -m asyncio``.
- A page starts from nothing configured (both stores ``memory://``), in an empty
  temporary directory (so a SQLite URL like ``sqlite+aiosqlite:///app.db``
  makes its file there), and with no other page's models.
- Blocks open no network connection: the only stores they use are the embedded
  ones (``memory://``, SQLite files). A block may build a ``Session`` or call
  ``configure`` with a server's URL, since that opens nothing; any connection a
  block tries is refused and fails the test, so no block can quietly reach a
  server and fall back to the fallback.
- A block that cannot run without a server is preceded by an HTML comment
  ``<!-- no-run: why -->`` (invisible on the site and on GitHub), and is only
  compiled. Keep those few.
- ``assert`` lines in blocks state what the call returns, and are checked.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import socket
import subprocess
import sys
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from dbdaora import settings
from dbdaora.meta import MODELS
from dbdaora.session import session as default_sessions

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
RUNNABLE = [ROOT / "README.md", *PAGES]

FENCE = re.compile(
    r"^(?P<skip><!-- no-run: (?P<why>[^>]+?) -->\n)?```python\n(?P<code>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


class Block(NamedTuple):
    line: int  # of the block's first code line in its page, from 1
    code: str
    no_run: str | None


def blocks(page: Path) -> list[Block]:
    """The page's ```python blocks, in order, each with the line it starts on."""
    text = page.read_text()
    return [
        Block(text.count("\n", 0, match.start("code")) + 1, match["code"], match["why"])
        for match in FENCE.finditer(text)
    ]


def compiled(page: Path, block: Block) -> Any:
    """The block compiled as its page's lines, so a traceback names the page and line."""
    source = "\n" * (block.line - 1) + block.code
    return compile(
        source, str(page.relative_to(ROOT)), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )


def test_the_docs_have_runnable_pages() -> None:
    """The pages have code blocks, and only a few of them need a server."""
    every = [block for page in RUNNABLE for block in blocks(page)]
    skipped = [block for block in every if block.no_run]
    assert len(every) >= 30 and len(skipped) <= len(every) // 4, (len(every), len(skipped))


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Refuse, and list, every socket connection the blocks try."""
    tried: list[Any] = []

    def refuse(sock: socket.socket, address: Any) -> Any:
        tried.append(address)
        raise ConnectionRefusedError(f"a docs block tried to connect to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return tried


@pytest.fixture
async def page_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_connections: list[Any]
) -> AsyncIterator[list[Any]]:
    """Nothing configured, an empty working directory, no models but the page's."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(settings.ENVIRONMENT_VARIABLE, raising=False)
    models = dict(MODELS)
    settings.reset()
    try:
        yield no_connections
    finally:
        session = default_sessions._default
        if session is not None:
            await session.close()
        settings.reset()
        MODELS.clear()
        MODELS.update(models)


@pytest.mark.parametrize("page", RUNNABLE, ids=[str(page.relative_to(ROOT)) for page in RUNNABLE])
async def test_page_code_blocks_run(
    page: Path, page_sandbox: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ```python block of the page runs, in order, in one namespace, with no server."""
    # A module of its own, as a program's would be: models resolve their annotations in it.
    module = types.ModuleType(f"docs_{page.stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    for block in blocks(page):
        code = compiled(page, block)
        if block.no_run:
            continue
        result = eval(code, namespace)  # the block runs as a module body would
        if inspect.iscoroutine(result):
            await result
    assert page_sandbox == [], f"{page.name}: blocks tried to connect to {page_sandbox}"


def test_mkdocs_build_is_strict_clean(tmp_path: Path) -> None:
    """``mkdocs build --strict`` succeeds: every page in the nav, links and API references
    resolve, the docstrings render."""
    environment = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "reference" / "index.html").read_text().count('id="dbdaora.') > 20
