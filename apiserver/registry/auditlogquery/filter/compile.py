"""Parse and type-check a filter with cel-expr-python (Google's CEL) and hand back the checked AST.

The checker knows every catalogue field with its type, so a typo or a type mismatch is reported with its line and
column before any SQL exists. It does not insist on a bool result, so that is checked here too.
"""

from __future__ import annotations

import difflib
import re

from cel_expr_python import cel
from google.protobuf import any_pb2

from apiserver.registry.auditlogquery.filter.celexpr import CheckedExpr
from apiserver.registry.auditlogquery.filter.problem import FilterRejected, Problem
from apiserver.registry.auditlogquery.filter.schema import MESSAGE_NAMES, environment, schema

MAX_FILTER_LENGTH = 8192  # characters; bounds the checker's and ClickHouse's work for one query

# cel-cpp reports `ERROR: <input>:LINE:COL: message` per problem, then the source line and a caret.
_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")
_UNDECLARED = re.compile(r"undeclared reference to '([^']*)'")
_UNDEFINED_FIELD = re.compile(r"undefined field '([^']*)' not found in struct '[^']*\.([^'.]*)'")
_OPERATOR = re.compile(r"'(?:_([^'\w\s]+)_|([!-])_|@(in))'")
# CEL has no `=`: the lexer stops at a lone one (`verb = 'get'`), which is almost always a comparison meant.
_LONE_EQUALS = re.compile(r"token recognition error at: '=(?!=)")


def _suggest(name: str, known: list[str], noun: str) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean '{close[0]}'?" if close else f"{noun}: {', '.join(sorted(known))}"


def _hint(message: str) -> str:
    """Say it in the user's terms: the closest field for a misspelt one, `==` rather than CEL's `_==_` (and for a
    lone `=`)."""
    message = _OPERATOR.sub(lambda m: f"'{m.group(1) or m.group(2) or m.group(3)}'", message)
    if _LONE_EQUALS.search(message):
        return f"{message} (did you mean '=='?)"
    undeclared = _UNDECLARED.search(message)
    if undeclared is not None:
        known = list(schema().variables)
        message = message.replace(" (in container '')", "")
        return f"{message} ({_suggest(undeclared.group(1), known, 'fields')})"
    undefined = _UNDEFINED_FIELD.search(message)
    if undefined is not None:
        parents = {message_name: head for head, message_name in MESSAGE_NAMES.items()}
        head = parents.get(undefined.group(2))
        if head is not None:
            known = [parts[1] for parts in schema().columns if len(parts) == 2 and parts[0] == head]
            return f"{head} has no field '{undefined.group(1)}' ({_suggest(undefined.group(1), known, 'its fields')})"
    return message


def _problems(err: RuntimeError) -> list[Problem]:
    text = str(err)
    found = [Problem(_hint(m.group(3)), int(m.group(1)), int(m.group(2))) for m in _ERROR.finditer(text)]
    lone = [i for i, p in enumerate(found) if _LONE_EQUALS.search(p.message)]
    if lone:
        # the parser's complaints after a lone `=` (`extraneous input ''get''`) are its echo: the hint says it all
        return [p for i, p in enumerate(found) if i < lone[0] or i in lone]
    if found:
        return found
    if "recursion limit" in text:
        return [Problem("the filter nests parentheses or calls too deeply; flatten it")]
    # Anything else from the checker still is about the filter; strip the status code noise.
    return [Problem(re.sub(r"^[A-Z_]+: |\s*\[[A-Z_]+\]$", "", text))]


def check(source: str) -> CheckedExpr:
    """The checked AST of a bool-valued filter; raises FilterRejected listing every problem the checker found."""
    if len(source) > MAX_FILTER_LENGTH:
        raise FilterRejected(
            [Problem(f"the filter is {len(source)} characters long; the limit is {MAX_FILTER_LENGTH}")]
        )
    try:
        expression = environment().compile(source)
    except RuntimeError as err:
        raise FilterRejected(_problems(err)) from None
    result = expression.return_type()
    if result != cel.Type.BOOL:
        raise FilterRejected(
            [
                Problem(
                    f"the filter must be a condition (true or false for each event), not a {result.name().lower()}",
                    1,
                    1,
                )
            ]
        )
    wrapped = any_pb2.Any()
    wrapped.ParseFromString(expression.serialize())
    checked = CheckedExpr()
    wrapped.Unpack(checked)
    return checked
