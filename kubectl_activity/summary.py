"""`kubectl activity summary`: top-N counts of requests in a window, by user, verb, resource or namespace.

The API has no facet (group-by) query, so the plugin computes the counts from pages of events: exact for the
events scanned, and capped by --max-events so a busy cluster does not stream millions of rows into a terminal.
Each request is counted once (by auditID) whichever stages of it were recorded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from auditlog.fields import BY_PATH, Field
from kubectl_activity.output import cell

DIMENSIONS: dict[str, Field] = {
    "user": BY_PATH["user.username"],
    "verb": BY_PATH["verb"],
    "resource": BY_PATH["objectRef.resource"],
    "namespace": BY_PATH["objectRef.namespace"],
}


@dataclass
class Tally:
    """Counts requests per value of one field, as pages arrive."""

    dimension: Field
    counts: Counter[str] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)  # auditIDs counted
    scanned: int = 0  # events read, all stages

    def add(self, events: Iterable[Mapping[str, Any]]) -> None:
        for event in events:
            self.scanned += 1
            audit_id = str(event.get("auditID", ""))
            if audit_id not in self.seen:
                self.seen.add(audit_id)
                self.counts[cell(event, self.dimension)] += 1

    @property
    def requests(self) -> int:
        return len(self.seen)

    def top(self, n: int) -> list[tuple[str, int]]:
        """The n largest counts, ties by value so the output is stable."""
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
