"""JSONPath as ASL uses it, compiled once per definition.

``compile_path`` turns a path string into a :class:`Path` whose ``get`` reads a
value. Paths come in three roots: ``$`` (the state's input or effective input),
``$$`` (the context object) and ``$name`` (a workflow variable). Simple paths
(``$.a.b[0]['c d']``) compile to a tuple of keys and are read with plain dict
and list lookups; anything else (wildcards, filters, slices, unions) goes to
jsonpath-ng, parsed once here and never in the step loop; its ``=~`` filters and
`` `sub()` `` operators search with RE2 (:mod:`.regexes`), and a pattern RE2 cannot run is a
:class:`PathSyntaxError`.

``compile_reference_path`` compiles a ResultPath, which may only name one
location, into a :class:`ReferencePath` whose ``put`` writes a value into a
copy of the input (copy on write: the input is never changed in place, so
Parallel branches and Map iterations can share it safely).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Protocol

from . import regexes

__all__ = [
    "Env",
    "Path",
    "PathNotFound",
    "PathSyntaxError",
    "ReferencePath",
    "compile_path",
    "compile_reference_path",
    "is_path",
]

_MISSING = object()


class Env(Protocol):
    """What a path needs besides the data ``$`` refers to."""

    @property
    def context(self) -> dict: ...  # the ``$$`` context object

    @property
    def variables(self) -> dict: ...  # workflow variables, read with ``$name``


class PathNotFound(LookupError):
    """The path names nothing in the data it was applied to."""

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path


class PathSyntaxError(ValueError):
    """The text is not a JSONPath this interpreter accepts."""


_SEGMENT = re.compile(
    r"""\.(?P<name>[^.\[\]'"*?@()]+)       # .name
      | \[(?P<index>\d+)\]                 # [0]
      | \['(?P<sq>(?:[^'\\]|\\.)*)'\]      # ['name']
      | \["(?P<dq>(?:[^"\\]|\\.)*)"\]      # ["name"]
    """,
    re.VERBOSE,
)
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def is_path(value: Any) -> bool:
    """Whether a string looks like a path (as opposed to an intrinsic call)."""
    return isinstance(value, str) and value.startswith("$")


def _split_root(text: str) -> tuple[str, str | None, str]:
    """Return (root kind, variable name, rest) for a path string."""
    if text.startswith("$$"):
        return "context", None, text[2:]
    if text.startswith("$") and len(text) > 1 and text[1] not in ".[":
        match = _VARIABLE.match(text)
        if not match:
            raise PathSyntaxError(f"invalid path: {text!r}")
        return "variable", match.group(1), text[match.end():]
    if text.startswith("$"):
        return "input", None, text[1:]
    raise PathSyntaxError(f"a path must start with '$': {text!r}")


def _simple_keys(rest: str) -> tuple | None:
    """Keys of a path made only of names and indexes, or None."""
    keys: list = []
    pos = 0
    while pos < len(rest):
        match = _SEGMENT.match(rest, pos)
        if not match:
            return None
        if match.group("name") is not None:
            keys.append(match.group("name"))
        elif match.group("index") is not None:
            keys.append(int(match.group("index")))
        elif match.group("sq") is not None:  # only the quote itself is escaped, as in AWS
            keys.append(match.group("sq").replace("\\'", "'"))
        else:
            keys.append(match.group("dq").replace('\\"', '"'))
        pos = match.end()
    return tuple(keys)


def _walk(data: Any, keys: tuple, text: str) -> Any:
    for key in keys:
        if type(key) is str:
            if type(data) is not dict:
                raise PathNotFound(text)
            data = data.get(key, _MISSING)
            if data is _MISSING:
                raise PathNotFound(text)
        else:
            if type(data) is not list or key >= len(data):
                raise PathNotFound(text)
            data = data[key]
    return data


class Path:
    """A compiled path; ``get(data, env)`` returns the value it names."""

    __slots__ = ("text", "root", "variable", "keys", "_expr", "definite")

    def __init__(self, text: str):
        self.text = text
        self.root, self.variable, rest = _split_root(text)
        self.keys = _simple_keys(rest)
        self._expr = None
        self.definite = True
        if self.keys is None:
            self._expr, self.definite = _parse_complex("$" + rest, text)

    @property
    def uses_context(self) -> bool:
        return self.root == "context"

    def _root_value(self, data: Any, env: Env | None) -> Any:
        if self.root == "input":
            return data
        if env is None:
            raise PathNotFound(self.text)
        if self.root == "context":
            return env.context
        variables = env.variables
        if self.variable not in variables:
            raise PathNotFound(self.text)
        return variables[self.variable]

    def get(self, data: Any, env: Env | None = None) -> Any:
        if self.root != "input":
            data = self._root_value(data, env)
        if self.keys is not None:
            return _walk(data, self.keys, self.text) if self.keys else data
        try:
            found = [m.value for m in self._expr.find(data)]
        except Exception as exc:  # jsonpath-ng raises bare Python errors on odd data
            raise PathNotFound(self.text) from exc
        if self.definite:
            if not found:
                raise PathNotFound(self.text)
            return found[0]
        return found

    def __repr__(self) -> str:
        return f"Path({self.text!r})"


def _without_dot_before_bracket(text: str) -> str:
    """``text`` with each ``.[`` outside quotes written ``[``: AWS reads ``$.[?(@.a > 0)]`` as
    ``$[?(@.a > 0)]`` (and ``$.[0]`` as ``$[0]``), which jsonpath-ng parses only for some
    brackets. A recursive descent ``..[`` is kept."""
    out: list[str] = []
    quote = None
    index = 0
    while index < len(text):
        char = text[index]
        if quote is not None:
            out.append(char)
            if char == "\\" and index + 1 < len(text):
                out.append(text[index + 1])
                index += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "." and text[index + 1:index + 2] == "[" and text[index - 1:index] != ".":
            pass
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _parse_complex(text: str, original: str):
    """Parse a non-simple path with jsonpath-ng; return (expression, definite)."""
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
    from jsonpath_ng.ext import parse

    regexes.install_jsonpath()  # filters' =~ search with RE2
    try:
        expr = parse(_without_dot_before_bracket(text))
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
        raise PathSyntaxError(f"invalid JSONPath {original!r}: {exc}") from exc
    try:
        regexes.bind_path(expr)
    except (regexes.UnsupportedPattern, TypeError) as exc:
        raise PathSyntaxError(f"invalid JSONPath {original!r}: {exc}") from None
    return expr, _is_definite(expr)


def _is_definite(expr) -> bool:
    """Whether a jsonpath-ng expression names at most one location."""
    from jsonpath_ng import jsonpath as jp

    if isinstance(expr, (jp.Root, jp.This)):
        return True
    if isinstance(expr, jp.Child):
        return _is_definite(expr.left) and _is_definite(expr.right)
    if isinstance(expr, jp.Fields):
        return len(expr.fields) == 1 and expr.fields[0] != "*"
    if isinstance(expr, jp.Index):
        return len(getattr(expr, "indices", (0,))) == 1
    return False


@lru_cache(maxsize=4096)
def compile_path(text: str) -> Path:
    """Compile (and cache) a path string."""
    if not isinstance(text, str):
        raise PathSyntaxError(f"a path must be a string, not {type(text).__name__}")
    return Path(text)


class ReferencePath:
    """A ResultPath: names one location, into which ``put`` writes a value."""

    __slots__ = ("text", "keys")

    def __init__(self, text: str):
        self.text = text
        root, _, rest = _split_root(text)
        keys = _simple_keys(rest) if root == "input" else None
        if keys is None:
            raise PathSyntaxError(f"{text!r} is not a reference path")
        self.keys = keys

    def put(self, data: Any, value: Any) -> Any:
        """Return a copy of ``data`` with ``value`` at this path.

        Missing objects along the way are created; a non-object in the way
        raises PathNotFound (the caller reports States.ResultPathMatchFailure).
        """
        if not self.keys:
            return value
        return _put(data, self.keys, value, self.text)

    def __repr__(self) -> str:
        return f"ReferencePath({self.text!r})"


def _put(data: Any, keys: tuple, value: Any, text: str) -> Any:
    key, rest = keys[0], keys[1:]
    if type(key) is str:
        if type(data) is not dict:
            raise PathNotFound(text)
        copy = dict(data)
        copy[key] = _put(data.get(key, {}), rest, value, text) if rest else value
        return copy
    if type(data) is not list or key >= len(data):
        raise PathNotFound(text)
    copy = list(data)
    copy[key] = _put(data[key], rest, value, text) if rest else value
    return copy


@lru_cache(maxsize=4096)
def compile_reference_path(text: str) -> ReferencePath:
    if not isinstance(text, str):
        raise PathSyntaxError(f"a reference path must be a string, not {type(text).__name__}")
    return ReferencePath(text)
