"""The house keeps its shape: imports only run down the stages (docs/engine.md), rooms of one floor are independent,
no import circle, argparse only under cli/, and no module reaches into another's private names."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "engine" / "reirrad"

FLOORS: list[set[str]] = [
    {"__main__", "__init__"},
    {"cli"},
    {"maint", "service"},
    {"audit", "importers", "testing"},
    {"evaluate"},
    {"explain"},
    {"plan"},
    {"backends", "dose"},
    {"logic"},
    {"knowledge", "case"},
    {"load"},
    {"vocabulary", "errors", "processes"},
]
"""From the top. A module may import from its own room and from any room on a lower floor, never upward and never
from another room of its own floor (``maint`` → ``testing`` is down one floor)."""

FLOOR_OF = {room: depth for depth, rooms in enumerate(FLOORS) for room in rooms}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, imported module, names) for every import anywhere in the file, relative ones resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target, [a.name for a in node.names]


MODULES = sorted(PACKAGE.rglob("*.py"))


def _edges() -> dict[str, set[str]]:
    known = {_module_name(p) for p in MODULES}
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        source = _module_name(path)
        targets = graph.setdefault(source, set())
        for _, target, names in _imports(path):
            if not target.startswith("reirrad"):
                continue
            # "from reirrad.dose import radiobiology" names a module
            for name in names or [""]:
                candidate = f"{target}.{name}" if name else target
                targets.add(candidate if candidate in known else target)
    return graph


def test_every_room_has_a_floor() -> None:
    rooms = {_room(_module_name(p)) for p in MODULES}
    assert rooms <= set(FLOOR_OF), f"rooms without a floor in this test: {rooms - set(FLOOR_OF)}"


def test_imports_run_only_down() -> None:
    wrong = []
    for path in MODULES:
        source = _module_name(path)
        room = _room(source)
        for line, target, _ in _imports(path):
            if not target.startswith("reirrad.") or _room(target) == room:
                continue
            if FLOOR_OF[_room(target)] <= FLOOR_OF[room]:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line}: {room} imports {target}")
    assert wrong == []


def test_no_import_circle() -> None:
    graph = _edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    # a package's __init__ re-exporting its own modules is not a circle of the design
    circles = [c for c in circles if not all(m == c[0] or m.startswith(c[0] + ".") for m in c)]
    assert circles == []


def test_argparse_only_under_cli() -> None:
    found = [
        str(p.relative_to(PACKAGE))
        for p in MODULES
        if _room(_module_name(p)) != "cli" and any(t == "argparse" for _, t, _ in _imports(p))
    ]
    assert found == []


def test_no_module_imports_another_modules_private_names() -> None:
    found = [
        f"{p.relative_to(PACKAGE)}:{line}: {name} from {target}"
        for p in MODULES
        for line, target, names in _imports(p)
        if target.startswith("reirrad") and target != _module_name(p)
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert found == []


@pytest.mark.parametrize(
    ("room", "floor"), [("cli", "maint"), ("evaluate", "explain"), ("logic", "knowledge"), ("load", "errors")]
)
def test_the_floors_are_in_the_documented_order(room: str, floor: str) -> None:
    assert FLOOR_OF[room] < FLOOR_OF[floor]
    assert f"{room}/" in (PACKAGE.parent.parent / "docs" / "engine.md").read_text(
        encoding="utf-8"
    ) or room in {
        "evaluate",
        "plan",
    }
