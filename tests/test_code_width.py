"""The check that the book's code fits the page column (tools/code_width.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import code_width  # noqa: E402


def test_long_lines_finds_code_cells_and_plain_code_only():
    long = "x = " + "1 + " * 30 + "1"
    text = "\n".join(
        [
            "# A page",
            "",
            "Prose may be as long as it likes: " + "word " * 30,
            "```{code-cell} ipython3",
            "short = 1",
            long,
            "```",
            "",
            "```{math}",
            "\\sum " * 30,
            "```",
            "",
            "````{prf:proof}",
            "```python",
            long,
            "```",
            "````",
            "",
            "```bash",
            "make book",
            "```",
        ]
    )
    assert code_width.long_lines(text) == [(6, len(long)), (15, len(long))]


def test_the_pages_outside_the_pending_list_pass():
    pages = sorted((ROOT / "book").glob("*.md"))
    for page in pages:
        name = page.relative_to(ROOT).as_posix()
        if name in code_width.PENDING:
            continue
        assert code_width.long_lines(page.read_text(encoding="utf-8")) == [], name
