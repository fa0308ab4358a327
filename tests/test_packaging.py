"""The distribution declares what the code imports, so a fresh ``pip install -e .`` runs every verb.

Issue #22: ``search/verdict.py`` imported scipy, which no ``pyproject.toml`` list named; the machine the
tests ran on had it installed globally, so nothing failed until a newcomer's fresh virtual environment.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lars", "objectives", "search")

# Distribution name -> the module it installs, where the two differ beyond case and '-' vs '_'.
MODULE_OF_DISTRIBUTION = {"pyyaml": "yaml", "psycopg[binary]": "psycopg"}


def _declared_modules(requirements: list[str]) -> set[str]:
    modules = set()
    for requirement in requirements:
        name = re.match(r"[A-Za-z0-9_.\-\[\]]+", requirement).group(0).lower()
        name = MODULE_OF_DISTRIBUTION.get(name, re.sub(r"\[.*\]", "", name))
        modules.add(name.replace("-", "_"))
    return modules


def _guards_import_error(node: ast.Try) -> bool:
    names = []
    for handler in node.handlers:
        if handler.type is None:
            return True
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names += [t.id for t in types if isinstance(t, ast.Name)]
    return bool({"ImportError", "ModuleNotFoundError", "Exception"} & set(names))


def _imports(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Top-level module names imported by ``tree``: (unguarded, guarded by ``except ImportError``)."""
    unguarded, guarded = set(), set()

    def visit(node: ast.AST, in_guard: bool) -> None:
        if isinstance(node, ast.Import):
            (guarded if in_guard else unguarded).update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            (guarded if in_guard else unguarded).add(node.module.split(".")[0])
        if isinstance(node, ast.Try):
            body_guarded = in_guard or _guards_import_error(node)
            for child in node.body:
                visit(child, body_guarded)
            for child in node.handlers + node.orelse + node.finalbody:
                visit(child, in_guard)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, in_guard)

    visit(tree, False)
    return unguarded, guarded


def _third_party(names: set[str]) -> set[str]:
    return {n for n in names if n not in sys.stdlib_module_names and n not in PACKAGES and n != "__future__"}


def test_every_unguarded_third_party_import_is_a_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _declared_modules(project["dependencies"])
    undeclared = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            unguarded, _ = _imports(ast.parse(path.read_text(), filename=str(path)))
            for module in _third_party(unguarded) - declared:
                undeclared.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert undeclared == {}, f"imported but not in [project].dependencies: {undeclared}"


def test_the_import_scan_sees_function_level_imports_and_skips_guarded_ones():
    source = """
import os
def f():
    import scipy.stats
    from matplotlib import pyplot
def g():
    try:
        import cmaes
    except ImportError:
        raise SystemExit("pip install cmaes")
"""
    unguarded, guarded = _imports(ast.parse(source))
    assert _third_party(unguarded) == {"scipy", "matplotlib"}
    assert _third_party(guarded) == {"cmaes"}


def test_distribution_names_map_to_the_modules_they_install():
    assert _declared_modules(["PyYAML>=6.0", "optuna-dashboard>=0.16", "psycopg[binary]>=3.1", "torch>=2.4"]) == {
        "yaml",
        "optuna_dashboard",
        "psycopg",
        "torch",
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_of_the_package_imports(package):
    root = importlib.import_module(package)
    names = [m.name for m in pkgutil.walk_packages(root.__path__, prefix=f"{package}.")]
    assert names, package
    for name in names:
        importlib.import_module(name)


def test_the_readme_holds_two_setup_commands_each_in_a_fresh_venv():
    """The README's two lines are what a newcomer pastes; `.ci/run` reads the second by the same pattern."""
    commands = re.findall(r"^    (apt-get .*)$", (ROOT / "README.md").read_text(), flags=re.MULTILINE)
    assert len(commands) == 2, commands
    run, test = commands
    venv = "python3 -m venv .venv && . .venv/bin/activate && pip install "
    assert venv in run and run.endswith("lars-search run studies/quickstart.yaml"), run
    assert venv in test and test.endswith(" && python -m pytest -q"), test
    assert "python3-venv" in run and "python3-venv" in test  # Debian's Python has no venv module without it
