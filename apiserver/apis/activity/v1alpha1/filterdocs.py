"""The user documentation of spec.filter (OpenAPI description, so `kubectl explain` teaches it), written from the
field catalogue so that a new field is documented the moment it becomes filterable."""

from __future__ import annotations

from auditlog.fields import FIELDS, FieldKind

_TYPE_NAMES = {
    FieldKind.STRING: "string",
    FieldKind.INT: "int",
    FieldKind.TIMESTAMP: "timestamp",
    FieldKind.STRING_LIST: "list of strings",
    FieldKind.STRING_MAP: "map of strings",
}

_INTRO = """\
A CEL expression (https://cel.dev) selecting the audit events to return; empty selects every event in the time \
window. It is type-checked against the fields below: a typo, a type mismatch or a construct the server cannot \
run is rejected with its line:column, never silently ignored."""

_OPERATORS = """\
Operators and functions:
- compare: == != < <= > >= on strings (by code point), ints and timestamps; == != on lists.
- combine: && || ! and parentheses.
- in: verb in ['create', 'delete'], 'system:masters' in user.groups, 'k' in annotations.
- strings: startsWith('x'), endsWith('x'), contains('x'), matches('RE2 regex') (searches anywhere: anchor \
with ^ and $), size(s) (characters).
- lists: size(l), l[0], l.exists(x, <condition on x>), l.all(x, ...), l.exists_one(x, ...); the same over \
annotations iterates its keys.
- has(objectRef.name): the field is present and not empty (not 0 for ints); has(annotations.key) for simple keys.
- time: stageTimestamp > timestamp('2026-01-01T00:00:00Z'), stageTimestamp > timestamp('...') - duration('1h') \
(durations: h, m, s, ms, us, ns, e.g. '1h30m').
- annotations['key'] looks up a key. For an event without that key the lookup is an error, and the event is \
left out unless the rest of the filter decides without it (annotations['k'] == 'v' || verb == 'get' still \
matches get events). So !(annotations['k'] == 'v') leaves out events lacking 'k'; to keep them, write \
!('k' in annotations) || annotations['k'] != 'v'. A list index past the end (user.groups[5]) behaves the same.
- cost: a filter whose estimated work per event is too large is rejected, as Kubernetes bounds CEL by cost. \
Inside exists()/all()/exists_one() test the item itself (annotations.exists(k, k.startsWith('x'))): nesting \
comprehensions over large fields, or referring to annotations or a list inside a comprehension over annotations, \
multiplies the work per item.
Not supported (rejected): arithmetic except on timestamps/durations, the ?: operator, map() and filter()."""


def _fields() -> str:
    lines = ["Fields:"]
    for field in FIELDS:
        lines.append(f"- {field.path} ({_TYPE_NAMES[field.kind]}): {field.description} Example: {field.example}")
    return "\n".join(lines)


_EXAMPLES = """\
Examples:
- verb == 'delete' && objectRef.resource == 'secrets'
- user.username.startsWith('system:serviceaccount:') && responseStatus.code >= 400
- objectRef.namespace in ['prod', 'staging'] && !(verb in ['get', 'list', 'watch'])"""

FILTER_DESCRIPTION = "\n\n".join((_INTRO, _fields(), _OPERATORS, _EXAMPLES))
