"""The plugin's tables: laid out as rich lays out a borderless table (the plugin used rich for it and now only
imports rich's cell widths, for start-up time), and safe with hostile values: one line per row, no escape
sequence reaching the terminal."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from kubectl_activity.output import COLUMN_GAP, print_table

# No control characters (handled separately below), no surrogates, and no zero-width marks or format characters:
# rich drops some of those when they start a cell (the plugin keeps them: they are part of the stored value).
ordinary = st.text(st.characters(exclude_categories=("Cc", "Cs", "Cf", "Mn", "Mc", "Me")), min_size=1, max_size=12)


def rich_table(rows: list[list[str]], headers: list[str]) -> str:
    """The table as rich renders it (the plugin's former code), trailing spaces dropped."""
    table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, COLUMN_GAP, 0, 0))
    for header in headers:
        table.add_column(header, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console = Console(file=io.StringIO(), width=10_000, highlight=False)
    with console.capture() as captured:
        console.print(table)
    return "".join(line.rstrip() + "\n" for line in captured.get().splitlines())


@given(
    st.integers(1, 4).flatmap(
        lambda n: st.tuples(
            st.lists(ordinary, min_size=n, max_size=n), st.lists(st.lists(ordinary, min_size=n, max_size=n), max_size=5)
        )
    )
)
def test_layout_is_richs(table: tuple[list[str], list[list[str]]]) -> None:
    headers, rows = table
    out = io.StringIO()
    print_table(rows, headers, out)
    assert out.getvalue() == rich_table(rows, headers)


@given(st.lists(st.text(max_size=20), min_size=1, max_size=5))
def test_control_characters_cannot_forge_rows_or_reach_the_terminal(values: list[str]) -> None:
    out = io.StringIO()
    print_table([[value, "end"] for value in values], ["VALUE", "LAST"], out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + len(values)
    assert all(line.rstrip().endswith(("end", "LAST")) for line in lines)
    assert not any(ch in out.getvalue() for ch in "\x1b\r\x07\x08\x9b")
