"""Which values of an audit event are credentials: the built-in rules (core Secrets, TokenRequest, TokenReview)
and those given with `--redact-path`, matched by the event's objectRef, plus the objects of a body that name one of
those kinds (a Secret in a `List` of mixed kinds). See docs/redaction.md."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ingest.redaction.paths import WILDCARD, Path, PathRule
from ingest.redaction.walk import Mark, embedded, redact_body, redact_object

# kubectl apply keeps the whole object it applied in this annotation: for a Secret, its data in the clear.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SECRET_PATHS: tuple[Path, ...] = (
    ("data", WILDCARD),
    ("stringData", WILDCARD),
    ("metadata", "annotations", LAST_APPLIED),
)
TOKEN_REQUEST_PATHS: tuple[Path, ...] = (("status", "token"),)
TOKEN_REVIEW_PATHS: tuple[Path, ...] = (("spec", "token"),)

BUILT_IN = (
    PathRule("", "secrets", None, SECRET_PATHS),
    PathRule("", "serviceaccounts", "token", TOKEN_REQUEST_PATHS),
    PathRule("authentication.k8s.io", "tokenreviews", None, TOKEN_REVIEW_PATHS),
)
# (API group, kind) -> paths, wherever such an object appears in a request or response body; a `<kind>List`
# names its items' kind (list items carry no kind of their own).
EMBEDDED_KINDS: dict[tuple[str, str], tuple[Path, ...]] = {
    ("", "Secret"): SECRET_PATHS,
    ("", "SecretList"): tuple(("items", WILDCARD, *p) for p in SECRET_PATHS),
    ("authentication.k8s.io", "TokenRequest"): TOKEN_REQUEST_PATHS,
    ("authentication.k8s.io", "TokenReview"): TOKEN_REVIEW_PATHS,
}
_KIND_LABELS = {
    "Secret": "core/secrets",
    "SecretList": "core/secrets",
    "TokenRequest": "core/serviceaccounts/token",
    "TokenReview": "authentication.k8s.io/tokenreviews",
}
BODIES = ("requestObject", "responseObject")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Rules:
    by_object_ref: tuple[PathRule, ...]

    @classmethod
    def with_extra(cls, extra: Iterable[PathRule]) -> Rules:
        return cls((*BUILT_IN, *extra))

    @property
    def resources(self) -> frozenset[tuple[str, str]]:
        """(API group, resource) of every objectRef a rule is about."""
        return frozenset((rule.group, rule.resource) for rule in self.by_object_ref)

    def apply(self, event: dict[str, Any], mark: Mark) -> str | None:
        """Redact `event` in place; the label of the rule that did (for metrics), None when nothing was."""
        label = None
        ref = event.get("objectRef")
        if isinstance(ref, dict):
            group, resource = _text(ref.get("apiGroup")), _text(ref.get("resource"))
            subresource = ref.get("subresource") or None
            matching = [rule for rule in self.by_object_ref if rule.matches(group, resource, subresource)]
        else:  # bodies without an objectRef to say what they are (a broken event, bound for a dead letter)
            matching = list(BUILT_IN)
        for rule in matching:
            if sum([redact_body(event, body, rule.paths, mark) for body in BODIES]) > 0:
                label = label or rule.label
        if isinstance(ref, dict) and any(rule in BUILT_IN for rule in matching):
            # a Secret's, TokenRequest's or TokenReview's bodies embed no other object
            return label
        for body in BODIES:
            for obj, group_kind in embedded(event.get(body), EMBEDDED_KINDS):
                if redact_object(obj, EMBEDDED_KINDS[group_kind], mark):
                    label = label or _KIND_LABELS[group_kind[1]]
        return label
