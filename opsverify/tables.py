"""Console tables of the ``opsverify`` CLI, rendered by rich: 100 columns unless ``--wide``.

Example::

    print(render(["status", "name", "why"], [["ok", "gateway", "fresh"]], wrap={"why"}))

Columns named in ``wrap`` fold onto more lines when the table is too wide; the others keep their
text on one line (rich shortens them with an ellipsis only if even that cannot fit). ``wide=True``
draws every cell on one line however long the table gets (for ``less -S`` or a wide terminal).
Every cell goes through ``redact`` before it is laid out: a secret split across wrapped lines
would no longer be recognisable afterwards. Cells are plain text: ``[staging-a]`` is not markup.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence

WIDTH = 100
WIDE = 100_000


def render(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    wide: bool = False,
    wrap: Iterable[str] = (),
    redact: Callable[[str], str] = str,
) -> str:
    """The table as plain text (no colour codes), at most :data:`WIDTH` columns unless ``wide``."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    folding = set(wrap)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1))
    for name in header:
        if wide:
            table.add_column(Text(name), no_wrap=True)
        elif name in folding:
            table.add_column(Text(name), overflow="fold", ratio=1)
        else:
            table.add_column(Text(name), no_wrap=True, overflow="ellipsis")
    for row in rows:  # as Text: a cell's "[...]" is text, never rich markup
        table.add_row(*(Text(redact(cell)) for cell in row))
    out = io.StringIO()
    console = Console(file=out, width=WIDE if wide else WIDTH, color_system=None, force_terminal=False,
                      legacy_windows=False, highlight=False)
    console.print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())
