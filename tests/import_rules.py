"""The direction of imports, checked on the source with ``ast`` (nothing is imported).

Floors, bottom to top: the core (``infer_kit/``), then the stages in the order of the flow,
then the CLI (``cli/``) and the benchmarks. A module may import its own floor and the floors
below it; another floor only through that floor's public names (its ``__init__``'s
``__all__``), never a private (``_x``) name. Imports inside functions and module names given
to ``importlib.import_module`` / ``importlib.util.find_spec`` count like any other import.
``infer_kit/__main__.py`` is the program's entry (``python -m infer_kit``), not the core: it
may import the CLI.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

CORE = "core"
STAGES = ("trainer", "aipp", "converter", "preprocess", "runtime", "postprocess", "pipeline")
TOP = ("cli", "benchmarks")
FLOORS = (CORE, *STAGES, *TOP)
ENTRY_POINTS = {Path("infer_kit/__main__.py")}
_DYNAMIC = {"import_module", "find_spec"}


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str  # absolute, e.g. infer_kit.runtime.stage
    names: tuple[str, ...]  # imported names (empty for "import x" and dynamic imports)


def floor_of_file(path: Path) -> str | None:
    top = path.parts[0]
    if top == "infer_kit":
        return CORE
    return top if top in FLOORS else None


def floor_of_module(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "infer_kit":
        return None
    if len(parts) == 1 or parts[1] not in (*STAGES, "cli"):
        return CORE
    return parts[1]


def package_of(path: Path, root: Path) -> str:
    """The dotted package a source file belongs to (stage folders install as infer_kit.<stage>)."""
    rel = path.relative_to(root)
    parts = list(rel.with_suffix("").parts)
    if parts[0] != "infer_kit":
        parts.insert(0, "infer_kit")
    return ".".join(parts[:-1]) if parts[-1] != "__init__" else ".".join(parts[:-1])


def imports_of(path: Path, root: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(root)
    package = package_of(path, root)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append(Import(rel, node.lineno, module, tuple(a.name for a in node.names)))
        elif isinstance(node, ast.Import):
            found += [Import(rel, node.lineno, a.name, ()) for a in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in _DYNAMIC and isinstance(node.args[0].value, str):
                found.append(Import(rel, node.lineno, node.args[0].value, ()))
    return found


def public_names(root: Path, floor: str) -> set[str]:
    """The ``__all__`` of a stage's ``__init__.py``."""
    init = root / floor / "__init__.py"
    if not init.is_file():
        return set()
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return {elt.value for elt in node.value.elts if isinstance(elt, ast.Constant)}
    return set()


def violations(root: Path) -> list[str]:
    """Every import in ``root``'s source folders that breaks the direction; empty when the house is in order."""
    problems = []
    publics = {floor: public_names(root, floor) for floor in STAGES}
    for folder in ("infer_kit", *STAGES, *TOP):
        for path in sorted((root / folder).rglob("*.py")):
            here = floor_of_file(path.relative_to(root))
            for imp in imports_of(path, root):
                problem = _check(imp, here, publics)
                if problem:
                    problems.append(f"{imp.path}:{imp.line}: {problem}")
    return problems


def _check(imp: Import, here: str | None, publics: dict[str, set[str]]) -> str | None:
    target = floor_of_module(imp.module)
    if target is None or here is None:
        return None
    if imp.path in ENTRY_POINTS:
        return None
    if target == here:
        return None
    if FLOORS.index(target) > FLOORS.index(here):
        what = "the core" if here == CORE else f"stage {here}"
        return f"{what} imports {imp.module}, which comes after it in the flow"
    private = [n for n in imp.names if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))]
    if private:
        return f"private name(s) {', '.join(private)} imported across floors from {imp.module}"
    if target in STAGES:
        if imp.module != f"infer_kit.{target}":
            return f"{imp.module} is not {target}'s public API: import from infer_kit.{target}"
        hidden = [n for n in imp.names if n not in publics[target]]
        if hidden:
            return f"{', '.join(hidden)} is not in infer_kit.{target}.__all__"
    return None


def module_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports (at module level or inside functions)."""
    modules = {}
    for folder in ("infer_kit", *STAGES, "cli"):
        for path in sorted((root / folder).rglob("*.py")):
            package = package_of(path, root)
            modules[package if path.name == "__init__.py" else f"{package}.{path.stem}"] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imp in imports_of(path, root):
            for target in (imp.module, *(f"{imp.module}.{n}" for n in imp.names)):
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles (strongly connected groups of more than one module)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        order[node] = low[node] = len(order)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in order:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], order[nxt])
        if low[node] == order[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in order:
            visit(node)
    return found
