"""The package's layers (DESIGN §10), checked from the code: every import points downward.

``cli.py``, ``flask.py``, ``django/`` → ``_cli/`` → ``_settings/`` → ``_load/`` → ``_fleet/``,
``_snapshot/`` → ``_client/`` → ``_rest/``, ``_e2ee/`` → ``_transport/`` → ``_core/`` →
``_errors.py``, ``_models.py``, ``_defaults.py``. Imports inside functions count (a lazy import
is still a dependency); imports under ``if TYPE_CHECKING:`` do not (they never run). Two layers of
one rank (the two APIs; the two shared tiers) know nothing of each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import phase_settings

PACKAGE = Path(phase_settings.__file__).resolve().parent

# rank of each top-level part of the package; a module may import only lower ranks or its own part
RANKS: dict[str, int] = {
    "_errors": 0,
    "_models": 0,
    "_defaults": 0,
    "_version": 0,
    "_core": 1,
    "_transport": 2,
    "_rest": 3,
    "_e2ee": 3,
    "_client": 4,
    "_snapshot": 5,
    "_fleet": 5,
    "_load": 6,
    "_settings": 7,
    "_cli": 8,
    # the public paths on top; nothing of the package imports them
    "cli": 9,
    "flask": 9,
    "django": 9,
    "__main__": 10,
}
# the base modules form one layer, in this order among themselves
BASE_ORDER = ["_version", "_errors", "_defaults", "_models"]
# ``__init__`` re-exports lazily from every layer; ``testing`` is the self-contained public fake
EXEMPT = {"__init__", "testing"}


def _part(module: str) -> str:
    """``phase_settings._load.cache`` -> ``_load``."""
    return module.split(".")[1] if "." in module else "__init__"


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                inside.update(id(n) for n in ast.walk(child))
    return inside


def imports_of(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, absolute module) of every package import in a file, ``TYPE_CHECKING`` excluded."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    package = parts[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("phase_settings"):
                continue
            if module == "phase_settings":  # from phase_settings import _x / from .. import _x
                found.extend((node.lineno, f"phase_settings.{a.name}") for a in node.names)
            else:
                found.append((node.lineno, module))
        elif isinstance(node, ast.Import):
            found.extend(
                (node.lineno, a.name) for a in node.names if a.name.startswith("phase_settings.")
            )
    return found


def _allowed(source: str, target: str) -> bool:
    if source == target:
        return True
    if source in BASE_ORDER and target in BASE_ORDER:
        return BASE_ORDER.index(target) < BASE_ORDER.index(source)
    if target not in RANKS:  # e.g. the public ``phase_settings`` facade
        return False
    return RANKS[target] < RANKS[source]


def upward_imports(root: Path = PACKAGE) -> list[str]:
    """``file:line: source -> target`` for every import that breaks the layer order."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        source = _part(".".join(relative.parts))
        if source in EXEMPT:
            continue
        for line, module in imports_of(path, root):
            target = _part(module)
            if target == "testing" and RANKS[source] >= RANKS["cli"]:
                continue  # the public command line serves the public fake
            if target == "testing" or not _allowed(source, target):
                found.append(f"{path.relative_to(root)}:{line}: {source} -> {target}")
    return found


def test_every_part_of_the_package_has_a_rank() -> None:
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    parts -= {"__pycache__", "py", "__init__", "testing"}
    parts = {p for p in parts if not p.endswith(".typed")}
    assert parts <= set(RANKS), parts - set(RANKS)


# Upward imports left by the move into sub-packages, each removed by the structural step that
# follows it (issue 17 step 2); the list may only shrink.
KNOWN_UPWARD = []


def test_imports_only_point_downward() -> None:
    found = sorted({f"{v.split(':')[0]}: {v.split(': ', 1)[1]}" for v in upward_imports()})
    assert found == sorted(KNOWN_UPWARD)


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The rule itself: a copy of the package with one import pointing up fails it."""
    copy = tmp_path / "phase_settings"
    for path in PACKAGE.rglob("*.py"):
        target = copy / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    core = copy / "_core" / "retry.py"
    core.write_text(
        core.read_text(encoding="utf-8") + "\n\ndef f():\n    from .._load import cache\n",
        encoding="utf-8",
    )
    found = upward_imports(copy)
    assert [v for v in found if v.startswith("_core/retry.py")] == [
        f"_core/retry.py:{len(core.read_text().splitlines())}: _core -> _load"
    ]


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("_load", "_client", True),
        ("_client", "_load", False),
        ("_rest", "_e2ee", False),
        ("_e2ee", "_rest", False),
        ("_snapshot", "_fleet", False),
        ("_core", "_errors", True),
        ("_models", "_errors", True),
        ("_errors", "_models", False),
        ("_cli", "cli", False),
    ],
)
def test_the_order_of_the_layers(source: str, target: str, allowed: bool) -> None:
    assert _allowed(source, target) is allowed
