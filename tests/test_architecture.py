"""The layout holds: imports go one way, with no cycles; page scripts stay one screen long.

Read from the source with ``ast`` (nothing is imported), so a new module is checked
the moment it exists.  docs/architecture.md draws the same rules.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sae", "explorer", "pages", "benchmarks", "teaching")
MAX_PAGE_LINES = 200


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    found["app"] = ROOT / "app.py"
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports, at any depth of the file (lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(path, known) - {name} for name, path in modules.items()}


def third_party_imports(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target.startswith(node + "."):
                continue  # a package importing its own submodules is not a cycle
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_there_is_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_the_library_imports_no_ui_no_pages_no_benchmarks():
    graph, modules = import_graph(), project_modules()
    for name, targets in graph.items():
        if name.split(".")[0] != "sae":
            continue
        upward = {t for t in targets if t.split(".")[0] in ("explorer", "pages", "benchmarks", "app", "teaching")}
        assert not upward, f"{name} imports {sorted(upward)}"
        assert "streamlit" not in third_party_imports(modules[name]), f"{name} imports streamlit"


# Inside sae/: which group may import which (besides itself).  A group is a subpackage, or a
# top-level module.  Read bottom-up: the network, then files and data, then what uses them.
BASE = {"sae.limits", "sae.errors", "sae.devices"}
NETWORK = BASE | {"sae.model", "sae.engine"}
SAE_MAY_IMPORT = {
    "sae.limits": set(),
    "sae.errors": set(),
    "sae.devices": set(),
    "sae.model": {"sae.limits"},
    "sae.engine": {"sae.model"},
    "sae.io": NETWORK,
    "sae.data": BASE | {"sae.io"},
    "sae.training": NETWORK | {"sae.io", "sae.data"},
    "sae.analysis": NETWORK | {"sae.io", "sae.data"},  # never training or runs: analysis asks, it does not run jobs
    "sae.plots": NETWORK | {"sae.analysis"},  # figures from results, nothing else
    "sae.runs": NETWORK | {"sae.io", "sae.data", "sae.training", "sae.analysis"},
    "sae.__main__": NETWORK | {"sae.io", "sae.data", "sae.training", "sae.analysis", "sae.runs"},
}
SUBPACKAGES = ("data", "training", "analysis", "io", "runs", "plots")


def sae_group(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and (parts[1] in SUBPACKAGES or len(parts) == 2) else module


def test_every_sae_module_belongs_to_a_known_group():
    groups = {sae_group(name) for name in project_modules() if name.startswith("sae.")}
    assert groups <= set(SAE_MAY_IMPORT), sorted(groups - set(SAE_MAY_IMPORT))


def test_inside_the_library_imports_follow_the_layers():
    for name, targets in import_graph().items():
        if not name.startswith("sae."):
            continue
        group = sae_group(name)
        for target in targets:
            if target == "sae" or not target.startswith("sae."):
                continue
            used = sae_group(target)
            assert used == group or used in SAE_MAY_IMPORT[group], f"{name} imports {target}: {group} may not use {used}"


def test_the_layer_rule_catches_a_wrong_edge(monkeypatch):
    graph = import_graph()
    graph["sae.analysis.sweep"] = graph["sae.analysis.sweep"] | {"sae.runs.jobs"}
    monkeypatch.setattr(sys.modules[__name__], "import_graph", lambda: graph)
    with pytest.raises(AssertionError, match="analysis may not use sae.runs"):
        test_inside_the_library_imports_follow_the_layers()


def test_the_engine_imports_the_model_only():
    assert {t for t in import_graph()["sae.engine"] if t.startswith("sae")} == {"sae.model"}


def test_glue_never_imports_a_page_and_benchmarks_use_public_names_only():
    graph, modules = import_graph(), project_modules()
    for name, targets in graph.items():
        if name.split(".")[0] in ("explorer", "sae", "benchmarks"):
            assert not {t for t in targets if t.split(".")[0] in ("pages", "app")}, name
    for name, path in modules.items():
        if not name.startswith("benchmarks"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sae":
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{name} imports private {private} from {node.module}"


# The teacher's side (teaching/) sits beside the Streamlit glue: pages and explorer/ may import it; it
# imports no Streamlit, nothing of theirs, and of the library only what describes and measures a view.
TEACHING_MAY_IMPORT = {"sae.limits", "sae.model", "sae.analysis", "sae.io", "sae.data"}


def test_the_teachers_side_imports_no_ui_and_only_part_of_the_library():
    graph, modules = import_graph(), project_modules()
    for name, targets in graph.items():
        if name.split(".")[0] != "teaching":
            continue
        assert "streamlit" not in third_party_imports(modules[name]), f"{name} imports streamlit"
        for target in targets:
            top = target.split(".")[0]
            assert top in ("teaching", "sae"), f"{name} imports {target}"
            if top == "sae" and target != "sae":
                assert sae_group(target) in TEACHING_MAY_IMPORT, f"{name} imports {target}"


def test_the_class_store_needs_no_model():
    """A replica that only serves a class (or a test of it) loads no torch: the store stays light."""
    for name in ("teaching.store", "teaching.store_sqlite", "teaching.store_redis"):
        assert not {t for t in import_graph()[name] if t.startswith("sae") or t == "teaching.facts"}, name
        assert "torch" not in third_party_imports(project_modules()[name]), name


def test_pages_top_level_holds_only_hand_overs_to_app_py_one_per_url():
    # Streamlit's legacy mode runs pages/<url>.py by itself (see pages/__init__.py): each must only enter app.py.
    tree = ast.parse((ROOT / "app.py").read_text())
    urls = {kw.value.value for node in ast.walk(tree) if isinstance(node, ast.Call) for kw in node.keywords if kw.arg == "url_path"}
    shims = {p.stem: p for p in (ROOT / "pages").glob("*.py") if p.name != "__init__.py"}
    assert set(shims) == urls
    for path in shims.values():
        body = [n for n in ast.parse(path.read_text()).body if not isinstance(n, ast.Expr) or not isinstance(n.value, ast.Constant)]
        assert ast.unparse(ast.Module(body, [])) == "from pages import enter_app\nenter_app()", path.name


def test_page_scripts_are_one_screen():
    scripts = list((ROOT / "pages" / "views").glob("*.py"))
    assert len(scripts) >= 4
    for script in scripts:
        lines = len(script.read_text().splitlines())
        assert lines <= MAX_PAGE_LINES, f"{script.name} has {lines} lines"


def test_every_page_in_app_py_exists():
    tree = ast.parse((ROOT / "app.py").read_text())
    paths = [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Page" and node.args and isinstance(node.args[0], ast.Constant)
    ]
    assert paths and all((ROOT / p).is_file() for p in paths)
    assert {p.rpartition("/")[2] for p in paths} == {p.name for p in (ROOT / "pages" / "views").glob("*.py")}
