"""The house rules of the package, checked on its source (no import of torch needed).

- Packages import each other's public names only, in one direction: ``samplers`` ←
  ``finetune`` ← ``studies`` ← ``cli``; top-level modules import no package.
- Every name a package's facade exports (``__all__``) is documented in the README.
- No function is longer than about 60 lines (its docstring aside).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
import re

import pytest


ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "biotune_optuna"
#: The layers, lowest first: a package may import the ones before it, never those after it.
LAYERS = ("samplers", "finetune", "studies", "cli")
FACADES = (
    "biotune_optuna",
    "biotune_optuna.samplers",
    "biotune_optuna.finetune",
    "biotune_optuna.studies",
)
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _owner(path: Path) -> str:
    """The package a module belongs to (``""``: a top-level module)."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else ""


def _imported(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of biotune_optuna in a module, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found += [(node.lineno, name) for name in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, name) for line, name in found if name.startswith("biotune_optuna.")]


def test_no_module_imports_another_packages_private_names() -> None:
    offences = []
    for path in _modules():
        owner = _owner(path)
        for line, name in _imported(path):
            parts = name.split(".")[1:]
            for depth, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    container = parts[:depth]
                    if not container or container[0] != owner:
                        offences.append(f"{path.relative_to(ROOT)}:{line} {name}")
                    break
    assert offences == []


def test_no_import_runs_against_the_layering() -> None:
    offences = []
    for path in _modules():
        owner = _owner(path)
        if path == PACKAGE / "__init__.py":  # the facade re-exports from every layer
            continue
        allowed = LAYERS[: LAYERS.index(owner)] if owner else ()
        for line, name in _imported(path):
            target = name.split(".")[1]
            if target in LAYERS and target != owner and target not in allowed:
                offences.append(f"{path.relative_to(ROOT)}:{line} {name}")
    assert offences == []


@pytest.mark.parametrize("facade", FACADES)
def test_every_name_a_facade_exports_is_documented_in_the_readme(facade: str) -> None:
    readme = (ROOT / "README.md").read_text()
    names = importlib.import_module(facade).__all__
    missing = [n for n in names if not re.search(rf"\b{re.escape(n)}\b", readme)]
    assert missing == []


def test_no_function_is_longer_than_sixty_lines() -> None:
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = node.end_lineno - node.lineno + 1
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                length -= first.end_lineno - first.lineno + 1  # the docstring
            if length > MAX_FUNCTION_LINES:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length})")
    assert long == []
