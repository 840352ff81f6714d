"""Build one page of the book (with the preface and conventions) alone, with the book's settings and warnings as errors.

    python tools/build_page.py sawtooth      # -> _build/page-sawtooth/_build/html

Useful while writing a chapter: the page executes in its own cache, so several
pages can be built at once without touching the main build in ``_build/``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    name = Path(argv[0]).stem
    if not (ROOT / "book" / f"{name}.md").is_file():
        print(f"no page book/{name}.md", file=sys.stderr)
        return 2
    out = ROOT / "_build" / f"page-{name}"
    out.mkdir(parents=True, exist_ok=True)
    toc = out / "_toc.yml"
    # The preface links to the conventions page, so both come along.
    pages = ["conventions"] + ([name] if name not in ("index", "conventions") else [])
    chapters = "chapters:\n" + "".join(f"  - file: book/{p}\n" for p in pages)
    toc.write_text(f"format: jb-book\nroot: book/index\n{chapters}")
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [
        str(jb),
        "build",
        "--warningiserror",
        "--nitpick",
        "--keep-going",
        "--toc",
        str(toc),
        "--path-output",
        str(out),
        str(ROOT),
    ]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
