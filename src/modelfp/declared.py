"""What a registry member's module declares, read from its source without importing it.

The workflow checks a config's hyper-parameters (`hp:`) and sampling options against the names a
test-bed family or a baseline declares (the keys of its `DEFAULTS`, the parameters of its `sample`)
when the Snakefile is parsed (modelfp.plan). Importing the member would import torch: seconds at
every snakemake start, for a list of names. So the names are read from the module's syntax tree;
tests/test_declared.py checks them against the imported modules, for every member of both registries.
"""

from __future__ import annotations

import ast
from functools import cache
from importlib.util import find_spec
from pathlib import Path


@cache
def _tree(module: str) -> ast.Module:
    """The parsed source of a module (its package is imported, the module itself is not)."""
    spec = find_spec(module)
    if spec is None or not spec.origin:
        raise ValueError(f"no module {module!r}")
    return ast.parse(Path(spec.origin).read_text(encoding="utf-8"), spec.origin)


def defaults(module: str) -> tuple[str, ...]:
    """The keys of the module's top-level `DEFAULTS = {...}` (its values may be any expression)."""
    for node in _tree(module).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == "DEFAULTS" and isinstance(node.value, ast.Dict):
            if None in node.value.keys:          # a **spread: its keys are not in the source
                raise ValueError(f"{module}: DEFAULTS spreads another dict; spell its keys out")
            return tuple(ast.literal_eval(key) for key in node.value.keys)
    raise ValueError(f"{module}: no top-level DEFAULTS = {{...}}")


def parameters(module: str, function: str) -> tuple[str, ...]:
    """The parameter names of a top-level function of the module, in order."""
    for node in _tree(module).body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            args = node.args
            return tuple(a.arg for a in args.posonlyargs + args.args + args.kwonlyargs)
    raise ValueError(f"{module}: no top-level def {function}(...)")
