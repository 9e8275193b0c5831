"""Pattern matching that runs in linear time, whatever the definition or the data.

``wildcard_matcher`` serves Choice ``StringMatches``: a pattern of literal runs
separated by ``*`` is matched by finding each run in order, leftmost first, so
there is no backtracking and the cost is linear in the text.
"""
from __future__ import annotations

from typing import Callable

__all__ = ["wildcard_matcher"]


def wildcard_matcher(pattern: str) -> Callable[[str], bool]:
    r"""A StringMatches pattern as a test: ``*`` is any run of characters.

    ``\*`` is a literal star and ``\\`` a literal backslash; a backslash before
    any other character stands for that character, and a trailing one for itself.
    """
    runs: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            current.append(pattern[index + 1])
            index += 2
            continue
        if char == "*":
            runs.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    runs.append("".join(current))
    if len(runs) == 1:
        literal = runs[0]
        return lambda text: text == literal
    first, middle, last = runs[0], runs[1:-1], runs[-1]
    shortest = len(first) + len(last) + sum(map(len, middle))

    def matches(text: str) -> bool:
        if len(text) < shortest or not text.startswith(first) or not text.endswith(last):
            return False
        position, end = len(first), len(text) - len(last)
        for run in middle:  # leftmost occurrence of each run leaves the most room for the rest
            found = text.find(run, position, end)
            if found < 0:
                return False
            position = found + len(run)
        return True

    return matches
