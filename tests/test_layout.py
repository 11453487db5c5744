"""The house rules that import-linter and ruff do not check (docs/architecture.md):

- no product module imports a private name (``_name``) of another package: what a package offers
  to others is public, so a reader sees what they may rely on;
- no product module is longer than about 600 lines unless its docstring says why it stays whole
  (a paragraph starting "Kept whole:").
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.settings import REPO_ROOT

MAX_LINES = 600
PACKAGES = sorted(p.parent.name for p in REPO_ROOT.glob("*/__init__.py") if p.parent.name != "tests")


def _modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (REPO_ROOT / package).rglob("*.py"))


def _imported_names(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.module, alias.name, node.lineno


def test_the_packages_are_found():
    assert {"core", "alerts", "sensors", "patrols", "api", "cli"} <= set(PACKAGES)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_private_name_of_another_package_is_imported(path: Path):
    own = path.relative_to(REPO_ROOT).parts[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    crossing = [
        f"line {line}: from {module} import {name}"
        for module, name, line in _imported_names(tree)
        if module.split(".")[0] in PACKAGES
        and module.split(".")[0] != own
        and (name.startswith("_") or any(part.startswith("_") and part != "__init__" for part in module.split(".")))
    ]
    assert not crossing, f"{path.relative_to(REPO_ROOT)} imports private names of other packages: {crossing}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_a_long_module_says_why_it_stays_whole(path: Path):
    source = path.read_text()
    lines = source.count("\n")
    if lines <= MAX_LINES:
        return
    docstring = ast.get_docstring(ast.parse(source)) or ""
    assert "Kept whole:" in docstring, (
        f"{path.relative_to(REPO_ROOT)} has {lines} lines: split it by concern, or say in its docstring "
        f"why it stays whole (a paragraph starting 'Kept whole:')"
    )


_MODEL_MODULES = sorted(
    ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
    for package in PACKAGES
    for path in (REPO_ROOT / package).rglob("*models.py")
)
_RESOLVE = """
import importlib, sys
importlib.import_module(sys.argv[1])
from core.models import Base
missing = sorted(f"{t.name} -> {fk.target_fullname}" for t in Base.metadata.tables.values()
                 for fk in t.foreign_keys if fk.target_fullname.split(".")[0] not in Base.metadata.tables)
print("; ".join(missing))
"""


@pytest.mark.parametrize("module", _MODEL_MODULES)
def test_a_models_module_brings_the_tables_it_refers_to(module: str):
    """Imported alone (as a process that needs only it does), a models module registers every table its
    foreign keys name: a session's flush sorts all mapped tables and fails on a missing one."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _RESOLVE, module], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"{module} refers to tables it does not import: {done.stdout.strip()}"
