"""No import cycle between the modules of ``pipelines/`` (issue 22).

The graph is read statically with ``ast`` (nothing is imported). What counts as an edge
``A -> B`` (``B`` a module of ``pipelines``):

* every ``import pipelines.x`` / ``from pipelines.x import y`` in ``A``, at module level AND inside
  functions: a function-level import is a real dependency that runs as soon as the function does
  (the project imports heavy or upward modules inside functions to keep imports cheap, not to
  hide a dependency), so a cycle through one is still a cycle a maintainer has to untangle;
* ``from pipelines.x import y`` where ``y`` is itself a module counts as ``A -> pipelines.x.y``;
  relative imports are resolved against ``A``'s package;
* ``if TYPE_CHECKING:`` imports do NOT count: they never run, they only name types for the
  annotations (``from __future__ import annotations`` everywhere);
* the package ``__init__`` that Python runs before a submodule does NOT count as an edge of the
  importer: a package's ``__init__`` re-exports its submodules (``pipelines.quality``), so a
  submodule importing a sibling would otherwise "depend" on every other sibling. Importing the
  package itself (``from pipelines.quality import run_quality_gate``) does count as an edge to
  the ``__init__``, and the ``__init__``'s own imports are edges like any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "pipelines"
ROOT = Path(__file__).resolve().parents[2]


def _modules(root: Path = ROOT) -> dict[str, Path]:
    """``{dotted name: path}`` of every module under ``pipelines/`` (a package as its ``__init__``)."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else None
            if name == "TYPE_CHECKING":
                for inner in node.body:
                    skip.update(id(n) for n in ast.walk(inner))
    return skip


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """``{module: {module it imports}}`` over the modules of ``pipelines/`` (see the docstring)."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _type_checking_nodes(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                # `import pipelines.a.b` names pipelines.a.b; an attribute path falls back to its module
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith(PACKAGE):
                    graph[name].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each with one cycle
    through it spelled out ``a -> b -> ... -> a``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def strongconnect(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return [_one_cycle(graph, set(c)) for c in components]


def _one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the first module of ``component`` (breadth first)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    return [*paths[v], start]
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    nxt.append(w)
        frontier = nxt
    return sorted(component)  # unreachable for a strongly connected component


#: ``{package under pipelines/: floor}``: the night's path, intake first; lab and ops share the top
#: floor (the CLI runs the lab's commands, the soak and the demo run nights). A module at the top of
#: ``pipelines/`` (not in a package) is on floor 0, the ground floor.
FLOORS = {"intake": 1, "build": 2, "quality": 3, "release": 4, "report": 5, "outbound": 6, "lab": 7, "ops": 7}

#: The imports that go up a floor, each with why it is there. A new one fails
#: :func:`test_each_floor_imports_only_the_floors_below`: move the shared piece down a floor, or
#: name it here with its reason.
READS_UP = {
    ("pipelines.build.dbt_failures", "pipelines.quality.model"):
        "the rows a failed dbt test stored are made JSON-safe by the gate's own jsonable()",
    ("pipelines.quality.gate", "pipelines.release"):
        "the gate compares the night with the last published release (its manifest, read only)",
    ("pipelines.quality.gate", "pipelines.lab.calibration"):
        "the health-distribution check of the gate is defined beside the calibration it checks",
    ("pipelines.release.publish", "pipelines.report"):
        "the publish writes the night's report into the release it builds",
    ("pipelines.outbound.alerts", "pipelines.lab.policy_lab"):
        "the digest reads the tier policy's dbt vars through the policy lab's dbt_var()",
}


def floor(module: str) -> int:
    """The floor of a module of ``pipelines`` (0: the ground floor, a module at its top)."""
    parts = module.split(".")
    return FLOORS.get(parts[1], 0) if len(parts) > 1 else 0


def upward_edges(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, targets in graph.items() for b in targets if floor(b) > floor(a))


def test_the_graph_sees_module_and_function_level_imports():
    """The walker itself: a module-level and a function-level import both make edges, and a
    TYPE_CHECKING import does not (so a cycle cannot hide inside a function)."""
    graph = import_graph()
    assert "pipelines.settings" in graph["pipelines.ops.nightly"]  # module level
    assert "pipelines.quality.gate" in graph["pipelines.ops.nightly"]  # inside publish()
    assert "pipelines.settings" not in graph["pipelines.duck"]  # only under TYPE_CHECKING


def test_a_planted_cycle_is_found_and_named():
    graph = {"pipelines.a": {"pipelines.b"}, "pipelines.b": {"pipelines.c"}, "pipelines.c": {"pipelines.a"},
             "pipelines.d": {"pipelines.a"}}
    assert find_cycles(graph) == [["pipelines.a", "pipelines.b", "pipelines.c", "pipelines.a"]]


def test_no_import_cycle_in_pipelines():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles in pipelines/ (break each by moving the shared piece down a floor):\n" + \
        "\n".join("  " + " -> ".join(c) for c in cycles)


def test_every_package_of_pipelines_has_a_floor():
    packages = {p.parent.name for p in (ROOT / PACKAGE).glob("*/__init__.py")}
    assert packages == set(FLOORS), "a package of pipelines/ without a floor (FLOORS), or a floor without a package"


def test_a_planted_import_up_a_floor_is_found():
    graph = {"pipelines.settings": {"pipelines.ops.nightly"}, "pipelines.intake.ingest": {"pipelines.build.dbt"},
             "pipelines.ops.nightly": {"pipelines.intake.ingest", "pipelines.lab.soak"}}
    assert upward_edges(graph) == [("pipelines.intake.ingest", "pipelines.build.dbt"),
                                   ("pipelines.settings", "pipelines.ops.nightly")]


def test_each_floor_imports_only_the_floors_below():
    unnamed = [(a, b) for a, b in upward_edges(import_graph()) if (a, b) not in READS_UP]
    assert not unnamed, "imports up a floor (FLOORS; move the shared piece down, or name it in READS_UP):\n" + \
        "\n".join(f"  {a} (floor {floor(a)}) -> {b} (floor {floor(b)})" for a, b in unnamed)
