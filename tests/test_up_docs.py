"""The README's commands stay true to what `activity up` does: the history example names the object the
first demo run on a fresh data directory changes most."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from activity.devtools.up.demo import DemoTraffic

GUIDE = Path(__file__).resolve().parent.parent / "README.md"


def test_the_history_example_names_the_first_runs_busiest_object() -> None:
    examples = re.findall(r"kubectl activity history (\S+) (\S+) -n (\S+) --diff", GUIDE.read_text())
    busiest = DemoTraffic.starting(datetime.now(UTC), run=1).busiest_object()
    assert examples
    assert set(examples) == {(busiest.resource, busiest.name, busiest.namespace)}
    assert busiest.versions >= 2
    words = {2: "twice", 3: "three times", 4: "four times", 5: "five times"}
    assert f"changes {words.get(busiest.versions, f'{busiest.versions} times')} in them" in " ".join(
        GUIDE.read_text().split()
    )
