"""The import graph of `probe` and `analysis` keeps the architecture's shape (docs/architecture.md):
no cycles, the measure side knows nothing downstream, analysis never measures, and no CLI command
module leans on another. Read from the source with `ast` (nothing is imported), so it holds for
lazy imports inside functions too. The rules name packages, not files: a module split into a
package (probe.verdict -> probe/verdict/) stays covered."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("probe", "analysis")

# Downstream of the measurements: what probe.measure must not know about.
DOWNSTREAM_OF_MEASURE = ("probe.verdict", "probe.results", "probe.cli", "probe.daemon", "probe.schedule",
                         "probe.runner", "probe.pipeline")
# Modules of probe.cli that are not commands (shared by all of them).
CLI_SHARED = ("probe.cli", "probe.cli.common")


def module_files(repo: Path, roots=ROOTS) -> dict[str, Path]:
    """Module name -> file, for every .py under the given top-level packages."""
    out: dict[str, Path] = {}
    for root in roots:
        for path in sorted((repo / root).rglob("*.py")):
            parts = list(path.relative_to(repo).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, str]]:
    """(name, stem) for each name an import statement asks for: ``import a.b`` gives (a.b, a.b),
    ``from a import b`` gives (a.b, a): b is the module a.b if there is one, else a name in a."""
    names: list[tuple[str, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:  # annotations only: no import at run time
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.extend((alias.name, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = package[: len(package) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.extend((f"{prefix}.{alias.name}", prefix) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def import_graph(repo: Path = REPO, roots=ROOTS) -> dict[str, set[str]]:
    """module -> modules of ``roots`` it imports explicitly. The implicit import of a parent package
    (`import a.b` runs a/__init__) is not an edge: Python handles it without a cycle."""
    files = module_files(repo, roots)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for name, stem in _imported_names(tree, module, path.name == "__init__.py"):
            if name not in files:
                name = stem  # the longest known module that holds it
                while name and name not in files:
                    name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _command_of(module: str) -> str | None:
    """The command module (probe.cli.<name>) a module of probe.cli belongs to; None if shared."""
    if not _under(module, "probe.cli") or module in CLI_SHARED:
        return None
    return ".".join(module.split(".")[:3])


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_graph_is_read(graph):
    # A vacuous graph would pass every rule below.
    assert "probe.measure.dns" in graph.get("probe.runner", set())
    assert any(_under(m, "probe.verdict") for m in graph.get("probe.runner", set()))
    assert "probe.cli.common" in graph.get("probe.cli.run", set())
    assert len(graph) > 30


def test_no_import_cycles(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_measure_imports_nothing_downstream(graph):
    bad = sorted((m, t) for m, ts in graph.items() if _under(m, "probe.measure")
                 for t in ts if any(_under(t, p) for p in DOWNSTREAM_OF_MEASURE))
    assert not bad, f"probe.measure must not know about verdicts, results, schedules or the CLI: {bad}"


def test_analysis_never_imports_probe_measure(graph):
    bad = sorted((m, t) for m, ts in graph.items() if _under(m, "analysis") for t in ts if _under(t, "probe.measure"))
    assert not bad, bad


def test_no_cli_command_module_imports_another(graph):
    bad = sorted((m, t) for m, ts in graph.items() for t in ts
                 if _command_of(m) and _command_of(t) and _command_of(m) != _command_of(t))
    assert not bad, f"a command module imports another command's module (share through probe.cli.common): {bad}"


# ------------------------------------------------------------------------- the checks themselves
def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_detects_a_cycle_through_a_lazy_import(tmp_path):
    _write(tmp_path, {
        "probe/__init__.py": "",
        "probe/a.py": "from probe.b import x\n",
        "probe/b.py": "def f():\n    from probe import a\n",
        "probe/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from probe import a\n",
    })
    g = import_graph(tmp_path, roots=("probe",))
    assert g["probe.a"] == {"probe.b"} and g["probe.b"] == {"probe.a"} and g["probe.c"] == set()
    assert set(find_cycle(g)) == {"probe.a", "probe.b"}


def test_relative_imports_and_packages(tmp_path):
    _write(tmp_path, {
        "probe/__init__.py": "",
        "probe/cli/__init__.py": "from .run import run_cmd\nfrom .show import show_cmd\n",
        "probe/cli/common.py": "",
        "probe/cli/run.py": "from . import common\n",
        "probe/cli/show.py": "from probe.cli.run import helper\n",
    })
    g = import_graph(tmp_path, roots=("probe",))
    assert g["probe.cli"] == {"probe.cli.run", "probe.cli.show"}
    assert g["probe.cli.run"] == {"probe.cli.common"}
    assert find_cycle(g) is None
    assert _command_of("probe.cli.show") != _command_of("probe.cli.run") and _command_of("probe.cli.common") is None
