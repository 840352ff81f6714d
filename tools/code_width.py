"""Check that the code of the book's pages fits the page column: `make lint`.

The column of a page shows about 78 characters of code; a longer line scrolls
sideways on the screen and is cut off in print. Every line of a code cell
(```` ```{code-cell} ````) and of a plain code block (```` ```python ````,
```` ```bash ````, ...) in ``book/*.md`` must be at most ``LIMIT`` characters.

    python tools/code_width.py [book/page.md ...]     # default: book/*.md

Prints one line per line that is too long and exits 1 when there is any.
Pages listed in ``PENDING`` are reported but do not fail the check yet: their
authors are reformatting them; remove a page from the list once it passes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 79
#: Pages still being reformatted (reported, not failed). Shrink, never grow.
PENDING: frozenset[str] = frozenset()

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>\S*)")


def long_lines(text: str, limit: int = LIMIT) -> list[tuple[int, int]]:
    """``(line number, length)`` of every code line longer than ``limit``.

    A code line is one inside a fenced block whose info string is ``{code-cell}``
    or a plain language name (not another directive such as ``{math}``)."""
    found = []
    fence = None  # the opening fence of the code block we are in
    other = []  # stack of fences of non-code blocks (directives) we are in
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line.lstrip())
        if fence is not None:
            if (
                match
                and match["fence"][0] == fence[0]
                and len(match["fence"]) >= len(fence)
                and not match["info"]
            ):
                fence = None
            elif len(line) > limit:
                found.append((number, len(line)))
            continue
        if match is None:
            continue
        info = match["info"]
        if other and not info and match["fence"] == other[-1]:
            other.pop()
        elif info == "{code-cell}" or (info and not info.startswith("{")):
            fence = match["fence"]
        elif info:
            other.append(match["fence"])
    return found


def main(argv: list[str]) -> int:
    files = [Path(a) for a in argv] or sorted((ROOT / "book").glob("*.md"))
    failed = pending = 0
    for path in files:
        name = path.resolve().relative_to(ROOT).as_posix()
        lines = long_lines(path.read_text(encoding="utf-8"))
        waiting = name in PENDING
        for number, length in lines:
            note = " (pending)" if waiting else ""
            print(f"{name}:{number}: code line of {length} > {LIMIT} characters{note}")
        if lines and waiting:
            pending += 1
        elif lines:
            failed += 1
    print(
        f"code width: {len(files)} page(s), {failed} with lines over {LIMIT} "
        f"characters" + (f", {pending} pending" if pending else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
