"""A state machine as a Mermaid flowchart, with chosen states highlighted.

States are nodes (Choice a rhombus, Wait a parallelogram, Succeed and Fail
rounded; Parallel and Map are subgraphs holding their branches or item
processor). Edges: Next, End (to the End node), each Choice rule and the
Default, and Catch (dotted, labelled with the errors it catches). Node IDs are
generated (``n1``, ``n2``, ...) so any state name is safe; labels are quoted
with Mermaid's entity codes for the characters it would read as syntax.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

_MAX_LABEL = 60
_COMPARISONS = {"Equals": "==", "GreaterThan": ">", "LessThan": "<",
                "GreaterThanEquals": ">=", "LessThanEquals": "<="}
_STYLES = {
    "waiting": "fill:#fff3bf,stroke:#e8590c,stroke-width:3px,color:#000",
    "visited": "fill:#e6fcf5,stroke:#0ca678,color:#000",
    "fail": "fill:#fff5f5,stroke:#c92a2a,color:#000",
}


def mermaid(definition: dict, waiting: Iterable[str] = (), visited: Iterable[str] = ()) -> str:
    """The flowchart text; states named in ``waiting`` / ``visited`` get those classes."""
    chart = _Chart()
    chart.line('startNode(("Start"))')
    first = chart.machine(definition, end="endNode")
    chart.line('endNode(("End"))')
    if first:
        chart.line(f"startNode --> {first}")
    chart.lines += chart.edges
    for name, style in _STYLES.items():
        chart.line(f"classDef {name} {style}")
    marked = set()
    for cls, names in (("waiting", set(waiting)), ("visited", set(visited)), ("fail", chart.failing)):
        ids = [node for state, node in chart.nodes if state in names and node not in marked]
        marked.update(ids)
        if ids:
            chart.line(f"class {','.join(ids)} {cls}")
    return "\n".join(["flowchart TD"] + chart.lines) + "\n"


class _Chart:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.edges: list[str] = []
        self.nodes: list[tuple[str, str]] = []  # (state name, node id) of plain nodes
        self.failing: set[str] = set()
        self.count = 0
        self.depth = 1

    def line(self, text: str) -> None:
        self.lines.append("  " * self.depth + text)

    def new_id(self) -> str:
        self.count += 1
        return f"n{self.count}"

    def machine(self, machine: Any, end: str | None) -> str | None:
        """Draw one machine's states; return the node ID of its StartAt."""
        states = machine.get("States") if isinstance(machine, dict) else None
        if not isinstance(states, dict):
            return None
        ids = {name: self.new_id() for name in states}
        for name, spec in states.items():
            self.state(name, spec if isinstance(spec, dict) else {}, ids[name])
        for name, spec in states.items():
            if isinstance(spec, dict):
                self.transitions(ids[name], spec, ids, end)
        return ids.get(machine.get("StartAt"))

    def state(self, name: str, spec: dict, node: str) -> None:
        kind = spec.get("Type", "")
        if kind == "Parallel":
            self.line(f"subgraph {node}[{label(name + ' (Parallel)')}]")
            self.depth += 1
            for index, branch in enumerate(spec.get("Branches") or []):
                inner = self.new_id()
                self.line(f"subgraph {inner}[{label(f'Branch {index + 1}')}]")
                self.depth += 1
                self.machine(branch, end=None)
                self.depth -= 1
                self.line("end")
            self.depth -= 1
            self.line("end")
            return
        if kind == "Map":
            self.line(f"subgraph {node}[{label(name + ' (Map)')}]")
            self.depth += 1
            self.machine(spec.get("ItemProcessor") or spec.get("Iterator") or {}, end=None)
            self.depth -= 1
            self.line("end")
            return
        shape = {"Choice": "{%s}", "Wait": "[/%s/]", "Succeed": "([%s])", "Fail": "([%s])"}.get(kind, "[%s]")
        self.line(node + shape % label(name))
        self.nodes.append((name, node))
        if kind == "Fail":
            self.failing.add(name)

    def transitions(self, node: str, spec: dict, ids: dict[str, str], end: str | None) -> None:
        def to(target: Any) -> str | None:
            return ids.get(target) if isinstance(target, str) else None

        if spec.get("Type") == "Choice":
            for rule in spec.get("Choices") or []:
                if isinstance(rule, dict) and to(rule.get("Next")):
                    self.edges.append(f"  {node} -->|{label(rule_text(rule))}| {to(rule['Next'])}")
            if to(spec.get("Default")):
                self.edges.append(f"  {node} -->|{label('Default')}| {to(spec['Default'])}")
        elif to(spec.get("Next")):
            self.edges.append(f"  {node} --> {to(spec['Next'])}")
        elif end and (spec.get("End") is True or spec.get("Type") == "Succeed"):
            self.edges.append(f"  {node} --> {end}")
        for catcher in spec.get("Catch") or []:
            if isinstance(catcher, dict) and to(catcher.get("Next")):
                errors = ", ".join(str(e) for e in catcher.get("ErrorEquals") or [])
                self.edges.append(f"  {node} -.->|{label(errors or 'Catch')}| {to(catcher['Next'])}")


def rule_text(rule: dict) -> str:
    """A short reading of a Choice rule: ``$.decision == "approve"``, ``$.n > 3 and ...``."""
    if "Condition" in rule:
        return str(rule["Condition"])
    for key, joiner in (("And", " and "), ("Or", " or ")):
        if isinstance(rule.get(key), list):
            return joiner.join(rule_text(r) for r in rule[key] if isinstance(r, dict))
    if isinstance(rule.get("Not"), dict):
        return f"not ({rule_text(rule['Not'])})"
    variable = str(rule.get("Variable", ""))
    for key, value in rule.items():
        if key in ("Variable", "Next", "Comment"):
            continue
        is_path = key.endswith("Path")
        operator = key[:-4] if is_path else key
        shown = str(value) if is_path else json.dumps(value, ensure_ascii=False)
        for suffix, symbol in _COMPARISONS.items():
            for family in ("String", "Numeric", "Boolean", "Timestamp"):
                if operator == family + suffix:
                    return f"{variable} {symbol} {shown}"
        if operator == "StringMatches":
            return f"{variable} matches {shown}"
        if operator.startswith("Is"):
            kind = operator[2:].lower()
            return f"{variable} is {kind}" if value is True else f"{variable} is not {kind}"
        return f"{variable} {operator} {shown}"
    return variable


def label(text: str) -> str:
    """A quoted Mermaid label; quotes, angle brackets and the like as entity codes."""
    text = " ".join(str(text).split())
    if len(text) > _MAX_LABEL:
        text = text[: _MAX_LABEL - 1] + "…"
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"),
                       ("&", "#amp;"), ("|", "#124;"), ("`", "#96;")):
        text = text.replace(char, code)
    return f'"{text}"'
