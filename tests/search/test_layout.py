"""search/'s rooms (issue 25 item 1): each room imports only the rooms below it, and no module imports itself in a circle.

The rooms, lowest first: the top-level leaves (``search.errors``, ``names``, ``seeds``, ...),
``storage`` and ``spec`` (which know nothing of each other), ``results``, ``run``, and ``cli``
on top. Read from the source with :mod:`ast`, so the imports a function makes count as well.
"""

import ast
from pathlib import Path

import pytest

SEARCH = Path(__file__).resolve().parents[2] / "search"

# room -> the rooms it may import ("" is the top-level leaves: errors, exit_codes, names, seeds, signals, text)
ALLOWED = {
    "": {""},
    "storage": {"", "storage"},
    "spec": {"", "spec"},
    "results": {"", "storage", "spec", "results"},
    "run": {"", "storage", "spec", "results", "run"},
    "cli": {"", "storage", "spec", "results", "run", "cli"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SEARCH.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(SEARCH.rglob("*.py"))}


def _room(module: str) -> str:
    """``search.run.trial`` and ``search.run`` (its ``__init__``) -> ``run``; a top-level leaf -> ``""``."""
    parts = module.split(".")
    is_room = len(parts) == 2 and MODULES[module].name == "__init__.py"
    return parts[1] if len(parts) >= 3 or is_room else ""


def _imports(module: str, *, top_level_only: bool) -> set[str]:
    """The search modules ``module`` imports (``from search.x import y`` counts y when it is a module)."""
    tree = ast.parse(MODULES[module].read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("search"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("search"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in MODULES else node.module)
    return {m for m in out if m in MODULES and m != "search"}


def test_every_module_is_in_a_known_room():
    rooms = {_room(m) for m in MODULES}
    assert rooms == set(ALLOWED), rooms ^ set(ALLOWED)
    assert {m for m in MODULES if _room(m) == ""} == {
        "search", "search.errors", "search.exit_codes", "search.names", "search.seeds", "search.signals", "search.text",
    }  # fmt: skip


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_room_imports_only_the_rooms_below_it(module):
    room = _room(module)
    wrong = {m for m in _imports(module, top_level_only=False) if _room(m) not in ALLOWED[room]}
    assert not wrong, f"{module} ({room or 'leaves'}) imports {sorted(wrong)}"


def test_no_import_cycle_between_modules():
    graph = {m: _imports(m, top_level_only=True) for m in MODULES}
    done, path = set(), []

    def visit(m):
        if m in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(m) :], m]))
        if m in done:
            return
        path.append(m)
        for n in sorted(graph[m]):
            visit(n)
        path.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)


def test_package_inits_are_thin_and_the_shims_stay_gone():
    """A room's __init__ lists its modules (no imports, no logic); no module __getattr__ or sys.modules lookup."""
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        if path.name == "__init__.py":
            kinds = {type(node).__name__ for node in tree.body}
            if module == "search.cli":  # the console script's entry point, search.cli:main
                kinds.discard("ImportFrom")
                assert "from search.cli.command import main\n" in path.read_text()
            assert kinds <= {"Expr", "Assign", "AnnAssign"}, (module, kinds)
        names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert "__getattr__" not in names, module
        assert "sys.modules" not in path.read_text(), module
