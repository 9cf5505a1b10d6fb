"""The architecture contract: which package may import which, and no import circles.

Reads every module of ours with `ast` (no import is executed), so a lazy import inside a
function counts the same as one at the top of the file: a lazy import that only dodges a
circle is still a circle. `if TYPE_CHECKING:` imports count too: a type that needs a forbidden
import is a layering problem as well. docs/architecture.md explains the layers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# package -> the packages of ours it may import (besides itself)
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "security": frozenset({"core"}),
    "collector": frozenset({"core", "security"}),
    "monitor": frozenset({"core", "security"}),
    "playbooks": frozenset({"core", "security"}),
    "api": frozenset({"core", "security", "monitor", "playbooks"}),
    "console": frozenset({"core"}),
    "watchfloor": frozenset(
        {"core", "security", "collector", "monitor", "playbooks", "api", "console"}
    ),
}
FOLDERS = frozenset(ALLOWED) - {"watchfloor"}
"""Top-level folders installed as `watchfloor.<folder>` (pyproject's package-dir)."""
LAYER_ROLE: dict[str, str] = {
    "core": "the shared contract: events, incidents, changes, vocabulary, config, Redis",
    "security": "tokens, roles, signing, audit log, field encryption, PII",
    "collector": "ingest service (HTTP + WebSocket), probes, simulator",
    "monitor": "rule engine, detectors, incident lifecycle",
    "playbooks": "playbook format, runner, timers, notifiers",
    "api": "the HTTP API composing monitor and playbooks",
    "console": "the Textual console (speaks HTTP to the api only)",
    "watchfloor": "the command and the wiring that starts a stack",
}


@dataclass(frozen=True)
class ImportEdge:
    """One import statement of ours: from module `source` (file:line) to module `target`."""

    source: str
    target: str
    path: Path
    line: int

    def where(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that `name` (a module or a name inside one) refers to.

    Installed, the top-level folders live under the `watchfloor` namespace
    (`watchfloor.core.keys` is the folder `core/keys.py`): the layer is the folder's.
    """
    first, _, rest = name.partition(".")
    if first == "watchfloor" and rest.partition(".")[0] in FOLDERS:
        name = rest
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imported_names(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = module.split(".")
            anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
            base = ".".join([*anchor, base] if base else anchor)
        # `from pkg import mod` imports the submodule when there is one
        yield from (f"{base}.{alias.name}" for alias in node.names)
    elif isinstance(node, ast.Call) and _is_dynamic_import(node):
        argument = node.args[0]
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            yield argument.value


def _is_dynamic_import(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in {"import_module", "__import__"} and bool(node.args)


def import_edges(modules: dict[str, Path]) -> list[ImportEdge]:
    edges: list[ImportEdge] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            for name in imported_names(node, module, is_package):
                target = resolve(name, modules)
                if target is None or target == module:
                    continue
                line = getattr(node, "lineno", 0)
                edges.append(ImportEdge(module, target, path, line))
                # Importing `a.b.c` runs `a/__init__` and `a/b/__init__` first: those are
                # edges too (a package __init__ that imports upwards closes a circle).
                edges.extend(
                    ImportEdge(module, parent, path, line)
                    for parent in parents(target, modules)
                    if parent != module and not _is_ancestor(parent, module)
                )
    # `from m import a, b` is one edge, not two
    return sorted(set(edges), key=lambda edge: (edge.source, edge.line, edge.target))


def parents(module: str, modules: dict[str, Path]) -> list[str]:
    """The packages of ours that importing ``module`` initialises first, outermost first."""
    parts = module.split(".")
    return [p for i in range(1, len(parts)) if (p := ".".join(parts[:i])) in modules]


def _is_ancestor(package: str, module: str) -> bool:
    """Whether ``module`` lives inside ``package`` (its own packages are already loading)."""
    return module.startswith(package + ".")


def layer_violations(edges: list[ImportEdge]) -> list[str]:
    found = []
    for edge in edges:
        source, target = edge.source.split(".")[0], edge.target.split(".")[0]
        if source != target and target not in ALLOWED[source]:
            found.append(
                f"{edge.where()}: {edge.source} imports {edge.target} ({source} -> {target})"
            )
    return found


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: every group of modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def circles(edges: list[ImportEdge], modules: dict[str, Path]) -> list[str]:
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for edge in edges:
        graph[edge.source].add(edge.target)
    found = []
    for group in strongly_connected(graph):
        members = set(group)
        found.append("circle: " + " <-> ".join(group))
        found.extend(
            f"  {edge.where()}: {edge.source} imports {edge.target}"
            for edge in edges
            if edge.source in members and edge.target in members
        )
    return found


def layer_table(edges: list[ImportEdge]) -> str:
    used: dict[str, set[str]] = {package: set() for package in ALLOWED}
    for edge in edges:
        source, target = edge.source.split(".")[0], edge.target.split(".")[0]
        if source != target:
            used[source].add(target)
    rows = [f"{'package':<11} {'may import':<46} imports today"]
    for package, allowed in ALLOWED.items():
        may = ", ".join(sorted(allowed)) or "(nothing of ours)"
        rows.append(f"{package:<11} {may:<46} {', '.join(sorted(used[package])) or '-'}")
    return "\n".join(rows)


def test_every_package_imports_only_the_layers_below_it() -> None:
    modules = our_modules()
    edges = import_edges(modules)
    print(layer_table(edges))
    violations = layer_violations(edges)
    print("\n".join(violations) or "no layer violations")
    assert not violations, "\n".join(violations)


def test_no_module_is_part_of_an_import_circle() -> None:
    modules = our_modules()
    found = circles(import_edges(modules), modules)
    print("\n".join(found) or "no import circles")
    assert not found, "\n".join(found)


def test_the_contract_sees_lazy_and_hidden_imports() -> None:
    """The reader itself: a lazy import and an importlib call are edges like any other."""
    source = (
        "def f():\n    from watchfloor.core import keys\n"
        "def g():\n    import importlib\n"
        "    importlib.import_module('watchfloor.security.crypto')\n"
    )
    names = [
        name
        for node in ast.walk(ast.parse(source))
        for name in imported_names(node, "security.keys", is_package=False)
    ]
    assert names == ["watchfloor.core.keys", "importlib", "watchfloor.security.crypto"]


def test_the_contract_sees_the_package_init_an_import_runs(tmp_path: Path) -> None:
    """`import pkg.sub.mod` runs `pkg/sub/__init__.py` first: that is an edge, so a package
    __init__ importing a module that imports into the package is a circle."""
    modules = {
        "monitor": ROOT / "monitor" / "__init__.py",
        "monitor.rules": tmp_path / "rules.py",
        "monitor.detectors": tmp_path / "detectors" / "__init__.py",
        "monitor.detectors.registry": tmp_path / "detectors" / "registry.py",
    }
    for module, path in modules.items():
        if module == "monitor":
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    modules["monitor.rules"].write_text("from watchfloor.monitor.detectors import registry\n")
    modules["monitor.detectors"].write_text("from watchfloor.monitor.rules import load_rules\n")
    edges = import_edges(modules)
    pairs = {(e.source, e.target) for e in edges}
    assert ("monitor.rules", "monitor.detectors") in pairs
    assert ("monitor.rules", "monitor") not in pairs  # its own package is already loading
    assert circles(edges, modules)[0] == "circle: monitor.detectors <-> monitor.rules"


def test_every_module_of_ours_imports_on_its_own() -> None:
    """Each module imported first, in a process with none of ours loaded: no order of imports
    hides a circle. (One interpreter loads the third-party libraries once and forks a child
    per module, so the check takes seconds, not a fresh interpreter's start per module.)"""
    import subprocess
    import sys

    names = [f"watchfloor.{m}" if m.split(".")[0] in FOLDERS else m for m in our_modules()]
    names = [n for n in names if not n.endswith("__main__")]
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, *names], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", out.stdout


IMPORT_EACH = """
import importlib, os, sys, traceback
for lib in ("aiohttp", "redis.asyncio", "msgpack", "textual.app", "cryptography", "websockets"):
    importlib.import_module(lib)
for name in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(name)
        except BaseException as exc:
            os.write(write, f"{name}: {type(exc).__name__}: {exc}".encode())
            os._exit(1)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        problem = pipe.read()
    os.waitpid(pid, 0)
    if problem:
        print(problem)
"""


def test_every_package_has_a_role_in_the_layer_table() -> None:
    assert set(LAYER_ROLE) == set(ALLOWED)
    assert all((ROOT / package / "__init__.py").is_file() for package in ALLOWED)


def test_the_contract_finds_a_circle_through_any_number_of_modules() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert strongly_connected(graph) == [["a", "b", "c"]]
