"""kubectl's `-o jsonpath=TEMPLATE` syntax: text with `{EXPR}` blocks (EXPR like `.items[*].user.username`,
relative to the current object), `{range EXPR}...{end}` loops and `{"\\n"}` literals. The path expressions are
evaluated by python-jsonpath; this module only parses kubectl's template around them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import jsonpath

from kubectl_activity.errors import PluginError

_BLOCK = re.compile(r"\{((?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^{}])*)\}")


@dataclass(frozen=True)
class Text:
    text: str


Compiled = jsonpath.JSONPath | jsonpath.CompoundJSONPath


@dataclass(frozen=True)
class Path:
    expression: Compiled


@dataclass(frozen=True)
class Range:
    expression: Compiled
    body: tuple[Text | Path | Range, ...]


Node = Text | Path | Range


def _path(expression: str) -> Compiled:
    expression = expression.strip()
    if expression.startswith("@"):
        expression = expression[1:]
    if not expression.startswith("$"):
        expression = "$" + ("" if expression.startswith((".", "[")) else ".") + expression
    try:
        return jsonpath.compile(expression)
    except jsonpath.JSONPathError as err:
        message = str(err).splitlines()[0]
        raise PluginError(f"error: error parsing jsonpath {expression}: {message}") from None


_LITERAL_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def _literal(quoted: str) -> str:
    return re.sub(r"\\(.)", lambda m: _LITERAL_ESCAPES.get(m.group(1), m.group(0)), quoted[1:-1])


def compile_template(template: str) -> tuple[Node, ...]:
    stack: list[tuple[Compiled | None, list[Node]]] = [(None, [])]
    position = 0
    for match in _BLOCK.finditer(template):
        if match.start() > position:
            stack[-1][1].append(Text(template[position : match.start()]))
        position = match.end()
        inner = match.group(1).strip()
        if inner[:1] in ("'", '"') and inner[-1:] == inner[:1]:
            stack[-1][1].append(Text(_literal(inner)))
        elif inner.startswith("range "):
            stack.append((_path(inner[len("range ") :]), []))
        elif inner == "end":
            if len(stack) == 1:
                raise PluginError("error: error parsing jsonpath: {end} without a matching {range}")
            expression, body = stack.pop()
            assert expression is not None
            stack[-1][1].append(Range(expression, tuple(body)))
        else:
            stack[-1][1].append(Path(_path(inner)))
    if len(stack) > 1:
        raise PluginError("error: error parsing jsonpath: {range} without a matching {end}")
    if position < len(template):
        stack[0][1].append(Text(template[position:]))
    return tuple(stack[0][1])


def _show(value: Any) -> str:
    """As kubectl prints a value: strings bare, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _render(nodes: tuple[Node, ...], data: Any) -> str:
    out = []
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.text)
        elif isinstance(node, Path):
            out.append(" ".join(_show(v) for v in node.expression.findall(data)))
        else:
            out.extend(_render(node.body, item) for item in node.expression.findall(data))
    return "".join(out)


def render(template: str, data: Any) -> str:
    return _render(compile_template(template), data)
