"""An import-linter contract for "never at module level": imports that run when a module is imported.

import-linter (through grimp) follows every import statement, including those inside functions.
The UI defers the heavy engine (torch, transformers) to functions on purpose, so the app opens at
once; what must not happen is that importing a UI module loads them. `module_level_forbidden` is
the `forbidden` contract over the import-time graph: imports inside function bodies are left out
before the chains are searched, and every other import (module body, class body, try/if blocks)
counts, directly or through other modules.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import cache

from grimp import ImportGraph
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.domain.contract import ContractCheck


@cache
def deferred_lines(module: str) -> frozenset[int]:
    """The lines of a module's source that hold an import inside a function body."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return frozenset()
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    lines = set()
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return frozenset(lines)


def drop_deferred_imports(graph: ImportGraph) -> None:
    """Remove every direct import that only ever happens inside a function."""
    for importer in list(graph.modules):
        if graph.is_module_squashed(importer):
            continue  # an external package: grimp does not read its imports
        for imported in list(graph.find_modules_directly_imported_by(importer)):
            details = graph.get_import_details(importer=importer, imported=imported)
            if details and all(d["line_number"] in deferred_lines(importer) for d in details):
                graph.remove_import(importer=importer, imported=imported)


class ModuleLevelForbiddenContract(ForbiddenContract):
    """`forbidden`, counting only the imports that run when a module is imported."""

    type_name = "module_level_forbidden"

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        drop_deferred_imports(graph)
        return super().check(graph, verbose)
