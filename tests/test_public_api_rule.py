"""The package uses httpx and httpcore through their public names only: no private module is
imported, no private attribute of theirs is read or replaced (``transport._pool = …`` was the
old way to install the deadline backend)."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import httpcore
import httpx

import phase_settings

PACKAGE = Path(phase_settings.__file__).resolve().parent
THIRD_PARTY = ("httpx", "httpcore", "h11")


@functools.cache  # two tests ask; parsing httpx and httpcore once is enough
def _private_names_of_the_libraries() -> frozenset[str]:
    """Every ``_name`` (not dunder) that httpx or httpcore sets on ``self`` or defines as a
    method or class attribute, read from their source files."""
    names: set[str] = set()
    for module in (httpx, httpcore):
        for path in Path(module.__file__).resolve().parent.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "self"
                ):
                    names.add(node.attr)
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(node.name)
    return frozenset(n for n in names if n.startswith("_") and not n.startswith("__"))


def _our_sources() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text()) for path in sorted(PACKAGE.rglob("*.py"))}


def _own_private_names(trees: dict[Path, ast.Module]) -> set[str]:
    """Private names the package defines itself (attributes it sets, methods it defines)."""
    names: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls", "client")
            ):
                names.add(node.attr)
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)  # setattr(self, "_name", …) in a frozen dataclass
    return names


def violations(trees: dict[Path, ast.Module]) -> list[str]:
    library_private = _private_names_of_the_libraries() - _own_private_names(trees)
    found = []
    for path, tree in trees.items():
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[0] in THIRD_PARTY and any(p.startswith("_") for p in parts[1:]):
                    found.append(f"{where}:{node.lineno}: from {node.module} import")
                for alias in node.names:
                    if parts[0] in THIRD_PARTY and alias.name.startswith("_"):
                        found.append(f"{where}:{node.lineno}: import of {alias.name}")
            if isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] in THIRD_PARTY and any(p.startswith("_") for p in parts[1:]):
                        found.append(f"{where}:{node.lineno}: import {alias.name}")
            if isinstance(node, ast.Attribute):
                root = node.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if (
                    isinstance(root, ast.Name)
                    and root.id in THIRD_PARTY
                    and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                ):
                    found.append(f"{where}:{node.lineno}: {root.id}….{node.attr}")
                elif node.attr in library_private:
                    found.append(f"{where}:{node.lineno}: .{node.attr} (private to httpx/httpcore)")
    return found


def test_no_private_httpx_or_httpcore_name_is_used() -> None:
    assert violations(_our_sources()) == []


def test_the_rule_catches_the_old_pool_replacement() -> None:
    trees = _our_sources()
    trees[PACKAGE / "_example.py"] = ast.parse(
        "import httpx\n"
        "t = httpx.HTTPTransport()\n"
        "t._pool = None\n"
        "from httpcore._backends.sync import SyncBackend\n"
        "x = httpx._config.DEFAULT_LIMITS\n"
    )
    found = "\n".join(violations(trees))
    assert "._pool" in found and "httpcore._backends.sync" in found and "_config" in found


def _runtime_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that can run: module level and inside functions (lazy imports too), but
    not under ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(trees: dict[Path, ast.Module]) -> dict[str, set[str]]:
    """Module -> the package modules it imports (see :func:`_runtime_imports`)."""
    names = {}
    for path in trees:
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[path] = (".".join(parts[:-1] if parts[-1] == "__init__" else parts), parts)
    modules = {name for name, _ in names.values()}
    graph: dict[str, set[str]] = {}
    for path, tree in trees.items():
        name, parts = names[path]
        package = parts[:-1]
        edges: set[str] = set()
        for node in _runtime_imports(tree):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in modules)
                continue
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            for alias in node.names:  # "from . import cli" imports a module
                sub = f"{target}.{alias.name}"
                edges.add(sub if sub in modules else target)
        graph[name] = {e for e in edges if e != name and e in modules}
    return graph


def test_no_import_cycles() -> None:
    graph = import_graph(_our_sources())
    modules = set(graph)
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> None:
        if module in stack:
            raise AssertionError("import cycle: " + " -> ".join([*stack, module]))
        if module in done or module not in modules:
            return
        for target in sorted(graph[module]):
            visit(target, [*stack, module])
        done.add(module)

    for module in sorted(modules):
        visit(module, [])


def test_importing_the_package_loads_no_http_library() -> None:
    import subprocess
    import sys

    code = "import sys, phase_settings; print(sorted({'httpx', 'httpcore'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
