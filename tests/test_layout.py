"""The code's layout keeps the rules docs/development.md states: no import cycle among the
modules of shop/ and observability/ (imports inside functions counted too: one that only dodges a
cycle hides it), and no function more complex than 20 (McCabe) without a comment saying why."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("shop", "observability")
MAX_COMPLEXITY = 20


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """The modules of ours a module imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}" if base else alias.name
                out.add(target if target in modules else base)
    return {m for m in out if m in modules and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    # A package's __init__ importing its own modules is how a package gathers its names, not a
    # cycle of the design: only a module reaching back up into its package counts.
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    assert _cycles(graph) == []


def _own_nodes(function):
    """The nodes of a function's own body: a function or class defined inside it counts apart."""
    todo = list(ast.iter_child_nodes(function))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))


def _complexity(node) -> int:
    """McCabe's number of a function: 1 + its branches (as radon counts them, near enough)."""
    count = 1
    for child in _own_nodes(node):
        if isinstance(child, (ast.If, ast.IfExp, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler, ast.Assert,
                              ast.match_case)):
            count += 1
        elif isinstance(child, ast.comprehension):
            count += 1 + len(child.ifs)
        elif isinstance(child, ast.BoolOp):
            count += len(child.values) - 1
        elif isinstance(child, ast.Try):
            count += bool(child.orelse)
    return count


def test_no_function_above_the_complexity_limit_without_a_reason():
    """Over 20, a function says why in a comment on its first line (`# complexity: ...`)."""
    over = []
    for name, path in _modules().items():
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _complexity(node) > MAX_COMPLEXITY:
                if "# complexity:" not in lines[node.lineno - 1]:
                    over.append(f"{name}.{node.name} ({_complexity(node)})")
    assert over == [], "\n".join(over)


@pytest.mark.parametrize("text, expected", [("def f():\n    return 1\n", 1),
                                            ("def f(a, b):\n    if a and b:\n        return [x for x in a if x]\n", 5)])
def test_the_complexity_count_counts_branches(text, expected):
    assert _complexity(ast.parse(text).body[0]) == expected
