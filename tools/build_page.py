"""Build one page of the book (with the preface and conventions) alone, with the book's settings and warnings as errors.

    python tools/build_page.py sawtooth      # -> _build/page-sawtooth/_build/html

Useful while writing a chapter: the page executes in its own cache, so several
pages can be built at once without touching the main build in ``_build/``.
Links to the chapters left out cannot resolve here, so only those warnings
(Sphinx's ``ref.doc`` and ``ref.ref``) are not errors; ``make book`` checks them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

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
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    # the copied configuration lives in ``out``: local extensions by full path
    extensions = config["sphinx"].get("local_extensions") or {}
    for name, folder in extensions.items():
        extensions[name] = str(ROOT / folder)
    sphinx = config["sphinx"].setdefault("config", {})
    sphinx["suppress_warnings"] = [
        *sphinx.get("suppress_warnings", []),
        "ref.doc",
        "ref.ref",
    ]
    (out / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [
        str(jb),
        "build",
        "--warningiserror",
        "--nitpick",
        "--keep-going",
        "--toc",
        str(toc),
        "--config",
        str(out / "_config.yml"),
        "--path-output",
        str(out),
        str(ROOT),
    ]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
