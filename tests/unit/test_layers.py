"""The layering rules of tracing/ (tracing/__init__.py and each folder's docstring say them),
checked over the source of every module in tracing/, tui/, cli/, benchmarks/ and
syscall_tables/: every import statement counts, those inside functions too, and
`importlib.import_module("a.literal")`. A broken rule names the file and line that breaks it.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tracing", "tui", "cli", "benchmarks", "syscall_tables")

# What the pure model may use, exactly: what it imports today (text made safe to show comes
# from boundary.display_text, the one error a user can cause from tracing.errors, syscall
# names from syscall_tables, each call's descriptor effects from decode.argspec: the
# descriptor table follows them), numpy and the standard library.
MODEL_MAY_IMPORT = ("tracing.model", "tracing.boundary.display_text", "tracing.errors",
                    "syscall_tables", "tracing.decode.argspec")
MODEL_EXTERNAL = frozenset({"numpy"})


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to an absolute dotted name: the submodule
    for `from package import submodule`, else the module named."""

    module: str  # the importing module, dotted
    path: str  # its file, relative to the repository
    line: int
    target: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _from_base(node: ast.ImportFrom, module: str, path: Path) -> str:
    """The absolute module a `from ... import` reads from (relative ones resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def _targets(node: ast.AST, module: str, path: Path,
             known: set[str]) -> Iterator[tuple[int, str]]:
    """(line, target) for each module an import statement (or call) names."""
    if isinstance(node, ast.Import):
        yield from ((node.lineno, alias.name) for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = _from_base(node, module, path)
        for alias in node.names:
            name = f"{base}.{alias.name}"
            yield node.lineno, name if name in known else base
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
          and node.func.attr == "import_module" and node.args
          and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        yield node.lineno, node.args[0].value


def all_imports() -> list[Import]:
    modules = project_modules()
    known = set(modules)
    found: list[Import] = []
    for module, path in modules.items():
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(), filename=rel)):
            found.extend(Import(module, rel, line, target)
                         for line, target in _targets(node, module, path, known))
    return sorted(found, key=lambda i: (i.path, i.line, i.target))


IMPORTS = all_imports()


def broken(rule: str, bad: list[Import]) -> str:
    return f"{rule}:\n" + "\n".join(f"  {i.where} imports {i.target}" for i in bad)


def test_the_model_imports_only_itself_and_plain_data() -> None:
    stdlib = sys.stdlib_module_names
    bad = [i for i in IMPORTS if is_under(i.module, "tracing.model")
           and not any(is_under(i.target, allowed) for allowed in MODEL_MAY_IMPORT)
           and (i.target.split(".")[0] in PACKAGES
                or i.target.split(".")[0] not in stdlib | MODEL_EXTERNAL)]
    assert not bad, broken("tracing/model may import only " + ", ".join(MODEL_MAY_IMPORT)
                           + ", numpy and the standard library", bad)


DECODE_MAY_IMPORT = (*MODEL_MAY_IMPORT, "tracing.decode")


def test_decoding_is_pure() -> None:
    """tracing/decode turns captured bytes into strace's text: model data in, text out."""
    stdlib = sys.stdlib_module_names
    bad = [i for i in IMPORTS if is_under(i.module, "tracing.decode")
           and not any(is_under(i.target, allowed) for allowed in DECODE_MAY_IMPORT)
           and (i.target.split(".")[0] in PACKAGES
                or i.target.split(".")[0] not in stdlib | MODEL_EXTERNAL)]
    assert not bad, broken("tracing/decode may import only " + ", ".join(DECODE_MAY_IMPORT)
                           + ", numpy and the standard library", bad)


def test_only_the_engine_imports_bcc() -> None:
    bad = [i for i in IMPORTS if is_under(i.target, "bcc")
           and not is_under(i.module, "tracing.engine")]
    assert not bad, broken("only tracing/engine may import bcc", bad)


def test_the_session_store_never_imports_the_engine() -> None:
    forbidden = ("tracing.engine", "tracing.sources", "tracing.record")
    bad = [i for i in IMPORTS if is_under(i.module, "tracing.session")
           and any(is_under(i.target, f) for f in forbidden)]
    assert not bad, broken("tracing/session must not import " + ", ".join(forbidden), bad)


def test_tracing_never_imports_the_user_interface() -> None:
    forbidden = ("textual", "tui", "cli")
    bad = [i for i in IMPORTS if is_under(i.module, "tracing")
           and any(is_under(i.target, f) for f in forbidden)]
    assert not bad, broken("nothing in tracing/ may import " + ", ".join(forbidden), bad)


def import_graph() -> dict[str, dict[str, Import]]:
    """module -> {module it imports: the first statement that does}, project modules only."""
    known = set(project_modules())
    graph: dict[str, dict[str, Import]] = {m: {} for m in known}
    for i in IMPORTS:
        if i.target in known and i.target != i.module:
            graph[i.module].setdefault(i.target, i)
    return graph


def strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that import each other."""
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
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return [g for g in groups if len(g) > 1]


def cycle_in(group: list[str], graph: dict[str, dict[str, Import]],
             start: str) -> list[Import]:
    """The shortest cycle through `start` within its group: the import statements along it."""
    members = set(group)
    paths: dict[str, list[Import]] = {start: []}
    frontier = [start]
    while frontier:  # breadth first: the shortest way back to the start
        nxt = []
        for node in frontier:
            for target, imp in sorted(graph[node].items()):
                if target == start:
                    return [*paths[node], imp]
                if target in members and target not in paths:
                    paths[target] = [*paths[node], imp]
                    nxt.append(target)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")


def cycles_in(group: list[str], graph: dict[str, dict[str, Import]]) -> list[list[Import]]:
    """The shortest cycle through each module of the group, each cycle once."""
    found: dict[frozenset[tuple[str, str]], list[Import]] = {}
    for start in group:
        steps = cycle_in(group, graph, start)
        found.setdefault(frozenset((s.module, s.target) for s in steps), steps)
    return list(found.values())


def describe_cycle(steps: list[Import]) -> str:
    hops = " -> ".join(f"{s.path} (line {s.line})" for s in steps)
    return f"  {hops} -> {steps[0].path}"


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = [describe_cycle(steps) for group in strongly_connected(graph)
              for steps in cycles_in(group, graph)]
    assert not cycles, "import cycles (each step: the file and the line of its import):\n" \
        + "\n".join(cycles)


def test_the_checker_sees_function_level_imports() -> None:
    """A rule over imports is only as good as the import finder: it must see the lazy ones
    (cli/main.py imports the subcommand modules inside functions)."""
    lazy = [i for i in IMPORTS if i.module == "cli.main" and i.target == "cli.interactive_cmd"]
    assert lazy, "cli/main.py's importlib.import_module('cli.interactive_cmd') was not seen"
    graph: dict[str, dict[str, Import]] = {"a": {}, "b": {}, "c": {}}
    for src, dst in (("a", "b"), ("b", "c"), ("c", "a")):
        graph[src][dst] = Import(src, f"{src}.py", 1, dst)
    assert strongly_connected(graph) == [["a", "b", "c"]]
    graph["b"]["a"] = Import("b", "b.py", 2, "a")
    assert [describe_cycle(c) for c in cycles_in(["a", "b", "c"], graph)] == [
        "  a.py (line 1) -> b.py (line 2) -> a.py",
        "  c.py (line 1) -> a.py (line 1) -> b.py (line 1) -> c.py"]
