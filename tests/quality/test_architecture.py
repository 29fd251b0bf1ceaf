"""The package's shape: no import cycles, no oversized files, stores that match their Protocols."""

from __future__ import annotations

import ast
import collections.abc
import inspect
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parents[2] / "dbdaora"
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    """Every module of dbdaora by dotted name; a package is its ``__init__``."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(node: ast.Import | ast.ImportFrom, module: str, path: Path) -> Iterator[str]:
    """The dotted names one import statement asks for, relative ones resolved."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    for alias in node.names:
        yield f"{base}.{alias.name}"  # the name as a module; _target falls back to base


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The dbdaora module an imported name is: itself, or the nearest module holding it."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _import_graph() -> dict[str, set[str]]:
    """Each module's edges to the dbdaora modules it imports, anywhere in its body."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for name in _imported(node, module, path):
                    target = _target(name, modules)
                    if target is not None and target != module:
                        graph[module].add(target)
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One import cycle through the first module of a strongly connected component."""
    inside, start = set(component), component[0]
    paths: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for successor in sorted(graph[node] & inside):
            if successor == start:
                return [*paths[node], start]
            if successor not in paths:
                paths[successor] = [*paths[node], successor]
                queue.append(successor)
    return component


def test_no_import_cycles() -> None:
    """No two dbdaora modules import each other, directly or around a loop, at any depth."""
    graph = _import_graph()
    assert "dbdaora.backends.redis.protocol" in graph["dbdaora.backends.redis.inprocess"]
    cycles = [
        " -> ".join(_cycle(graph, component))
        for component in _strongly_connected(graph)
        if len(component) > 1
    ]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_module_is_too_long() -> None:
    """Every .py file in dbdaora/ is at most MAX_LINES lines."""
    lengths = {path: len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    long = {
        str(path.relative_to(PACKAGE.parent)): n for path, n in lengths.items() if n > MAX_LINES
    }
    assert not long, f"over {MAX_LINES} lines: {long}"


def _is_async(function: Any) -> bool:
    """An ``async def``, or a plain def annotated to return a coroutine (no frame of its own)."""
    if inspect.iscoroutinefunction(function):
        return True
    returns = inspect.signature(function).return_annotation
    if isinstance(returns, str):  # postponed annotations: read the text, resolve nothing
        return returns.split("[")[0].rpartition(".")[2] in ("Coroutine", "Awaitable")
    return typing.get_origin(returns) in (collections.abc.Coroutine, collections.abc.Awaitable)


def _protocol_methods(protocol: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in vars(protocol).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


def _mismatches(protocol: type, store: type) -> list[str]:
    problems = []
    for name, declared in _protocol_methods(protocol).items():
        method = getattr(store, name, None)
        if not callable(method):
            problems.append(f"{store.__name__}.{name} is missing")
            continue
        if _is_async(method) != _is_async(declared):
            problems.append(f"{store.__name__}.{name}: async is {_is_async(method)}")
        wanted = list(inspect.signature(declared).parameters.values())
        given = list(inspect.signature(method).parameters.values())
        shape = [(p.name, p.kind) for p in wanted]
        if [(p.name, p.kind) for p in given[: len(wanted)]] != shape or any(
            p.default is inspect.Parameter.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            for p in given[len(wanted) :]
        ):
            problems.append(f"{store.__name__}.{name}{inspect.signature(method)} differs")
    if "url" not in typing.get_type_hints(protocol):
        problems.append(f"{protocol.__name__} lost its url attribute")
    return problems


def test_stores_implement_their_protocols() -> None:
    """Each concrete store has every Protocol method, same async-ness, same parameters."""
    from dbdaora.backends import DictFallback, FallbackStore, InProcessRedis, RedisSide
    from dbdaora.backends.fallback.datastore.store import DatastoreFallback
    from dbdaora.backends.fallback.sql.store import SQLFallback
    from dbdaora.backends.redis.cluster import ClusterStore
    from dbdaora.backends.redis.single import RedisStore

    pairs = [
        (RedisSide, [InProcessRedis, RedisStore, ClusterStore]),
        (FallbackStore, [DictFallback, SQLFallback, DatastoreFallback]),
    ]
    assert {"lease", "fill_hashes", "claim", "zrange"} <= set(_protocol_methods(RedisSide))
    assert {"get_many", "add_members", "create_all"} <= set(_protocol_methods(FallbackStore))
    problems = [
        problem
        for protocol, stores in pairs
        for s in stores
        for problem in _mismatches(protocol, s)
    ]
    assert not problems, "\n".join(problems)
    stores = [
        InProcessRedis(),
        RedisStore("redis://127.0.0.1:1/0"),
        ClusterStore("redis+cluster://127.0.0.1:1"),
        DictFallback(),
        SQLFallback("sqlite+aiosqlite:///:memory:"),
        DatastoreFallback("datastore://project"),
    ]
    assert all(isinstance(store.url, str) for store in stores)
