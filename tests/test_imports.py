"""The picture of modelfp's imports: no circle, and two doors that nothing below them imports.

The graph is read from the source (every `import modelfp.x`, `from modelfp.x import`, `from .x
import`, also those inside functions, which break no circle at run time but still tie the modules
together), so a circle fails here before anyone has to draw it.
"""
import ast
import subprocess
import sys
from pathlib import Path

import modelfp

PACKAGE = Path(modelfp.__file__).parent
DOORS = ("modelfp.cli", "modelfp.steps")      # the people's command line, the workflow's steps
ENTRIES = ("modelfp.__main__",)               # `python -m modelfp`: the people's door itself


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _targets(module: str, is_package: bool, node, known) -> list[str]:
    """The modelfp modules an import statement names (a `from m import name` names m.name when it
    is a module, else m)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".")[:len(module.split(".")) - node.level + is_package]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        names = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names]
    else:
        return []
    out = []
    for name in names:
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in known:
            out.append(name)
    return out


def _related(a: str, b: str) -> bool:
    """A package and its own submodules are one unit (Python imports the package first anyway)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def import_graph() -> dict[str, set[str]]:
    known = _modules()
    graph = {}
    for module, path in known.items():
        is_package = path.name == "__init__.py"
        graph[module] = {t for node in ast.walk(ast.parse(path.read_text()))
                         for t in _targets(module, is_package, node, known) if not _related(module, t)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports as [a, b, ..., a], or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _in(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_graph_sees_a_relative_import_inside_a_function():
    # the reader itself: modelfp.splits imports modelfp.extractor only inside training_side
    assert "modelfp.extractor" in import_graph()["modelfp.splits"]


def test_find_cycle_finds_a_circle_and_only_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_modelfp_imports_have_no_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import circle: {' -> '.join(cycle)}"


def test_no_library_module_imports_a_door():
    graph = import_graph()
    offenders = {m: sorted(t for t in targets if _in(t, DOORS)) for m, targets in graph.items()
                 if not _in(m, DOORS + ENTRIES)}
    offenders = {m: t for m, t in offenders.items() if t}
    assert not offenders, f"library modules importing a command line: {offenders}"


def test_the_two_doors_do_not_import_each_other():
    graph = import_graph()
    steps = {t for m, targets in graph.items() if _in(m, ["modelfp.steps"]) for t in targets}
    assert "modelfp.cli" not in steps
    assert not any(_in(t, ["modelfp.steps"]) for t in graph["modelfp.cli"])
    assert {"modelfp.cliutil"} <= graph["modelfp.cli"] and "modelfp.cliutil" in graph["modelfp.steps"]


def test_building_either_parser_imports_no_torch():
    """Every workflow job is a fresh process: its parser must not pay torch's import (about 2 s)."""
    code = ("import sys, modelfp.steps, modelfp.cli; modelfp.steps.build_parser(); modelfp.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'torchvision', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_writing_tables_and_sampling_import_neither_scipy_nor_torchvision():
    """Most workflow jobs only write a table or sample a test model; scipy.stats (about 1 s) and
    torchvision (about 2 s) are imported by the jobs that use them, not by these modules."""
    code = ("import sys, modelfp.tables, modelfp.testbed, modelfp.steps.testbed; "
            "print(sorted(m for m in ('scipy', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
