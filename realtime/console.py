"""Where emoview talks to people: progress and messages on stderr, so stdout stays for data."""

import os

from rich import box
from rich.console import Console
from rich.table import Table

stderr = Console(stderr=True, highlight=False, soft_wrap=True)  # a message is one line, never re-wrapped


def stdout_console(piped_width: int = 160) -> Console:
    """Results on stdout at the terminal's width; piped, at $COLUMNS if set, else `piped_width`,
    so a table saved to a file keeps every row on one line."""
    console = Console(highlight=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(highlight=False, width=piped_width)
    return console


def figures_table(title: str) -> Table:
    """A table of figures that fits 80 columns: no vertical rules and one space of padding (rich's
    default box takes three columns per column: ten columns of figures then leave no room, and
    rich cuts every figure to "1…"). Headers should be short words: a column is never narrower
    than its longest word, and long text columns wrap instead of cutting the figures."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), show_edge=False)
