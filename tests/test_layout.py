"""The layout's rules: imports point one way between the rooms, and no module imports itself in a circle.

The rooms and what each may import (README, "Layout"): a package below may not
import one above it. grimp reads the import statements of every module.
"""
from __future__ import annotations

import grimp
import pytest

#: What each room of ``chalicelib`` may import from the others.
ALLOWED = {
    "asl": set(),
    "config": set(),
    "store": {"config"},
    "resources": {"asl"},
    "service": {"asl", "resources", "store", "config"},
    "approvals": {"service", "asl", "store", "config"},
    "api": {"approvals", "service", "resources", "asl", "store", "config"},
    "workers": set(),  # activity workers: boto3 only, so they run against AWS Step Functions too
}
#: Above every room: the package's library API and the command line.
TOP = {"chalicelib", "chalicelib.__main__"}


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("chalicelib", cache_dir=None)


@pytest.fixture(scope="module")
def runtime_graph():
    """Without the imports under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    return grimp.build_graph("chalicelib", cache_dir=None, exclude_type_checking_imports=True)


def room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and module not in TOP else None


def test_every_module_is_in_a_known_room(graph):
    unknown = sorted(m for m in graph.modules if m not in TOP and room(m) not in ALLOWED)
    assert not unknown, f"modules outside the rooms of the layout: {unknown}"


def test_imports_between_rooms_point_down_only(graph):
    wrong = []
    for module in graph.modules:
        source = room(module)
        if source is None:
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            target = room(imported)
            if imported in TOP:
                wrong.append(f"{module} -> {imported} (the top)")
            elif target is not None and target != source and target not in ALLOWED[source]:
                wrong.append(f"{module} -> {imported}")
    assert not wrong, "imports against the layout:\n" + "\n".join(sorted(wrong))


def test_the_interpreter_imports_nothing_outside_its_package(graph):
    outside = sorted(f"{m} -> {i}" for m in graph.modules if room(m) == "asl"
                     for i in graph.find_modules_directly_imported_by(m) if room(i) != "asl")
    assert not outside


def test_no_import_cycles(runtime_graph):
    """Tarjan's strongly connected components over every import that runs."""
    graph = runtime_graph
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:  # iterative, so deep import chains don't hit the recursion limit
        work = [(node, iter(sorted(graph.find_modules_directly_imported_by(node))))]
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[current] = min(low[current], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[current])
                if low[current] == index[current]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == current:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


#: Past this many lines a module says in its docstring why it is one piece.
LONG_MODULE_LINES = 450


def test_long_modules_say_why_they_are_one_piece(graph):
    import importlib
    import inspect

    unexplained = []
    for name in sorted(graph.modules):
        module = importlib.import_module(name)
        lines = inspect.getsource(module).count("\n")
        if lines > LONG_MODULE_LINES and "It is long because" not in (module.__doc__ or ""):
            unexplained.append(f"{name} ({lines} lines)")
    assert not unexplained, "long modules whose docstring does not say why they are one piece: " + ", ".join(unexplained)
