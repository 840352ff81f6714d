"""Measure the book on this machine: `make bench`.

Copies the book to a temporary folder (so the working build and its cache are
untouched), then prints one table:

- each page's cold execution seconds, read from the build's own log, next to
  its budget (a chapter must execute in at most 60 s on a 2-core machine);
- each page's weight: its HTML, the HTML with the images it shows, the other
  frames of its interactive figures, and the scripts and style sheets it loads
  (limits: HTML 300 KiB, HTML with images 2 MiB);
- the whole cold build, and a rebuild with nothing changed;
- each page's slowest cells (its experiments), timed by executing the built
  notebooks once more, cell by cell.

Then it times the launch rehearsals of ``make test`` (tools/rehearse.py) on the
working checkout: the Colab run of every published notebook (with the
live-widget check), the Binder run, and what making their environment took.

Exits with status 1 when a page is over its time budget or its weight limits.

    python tools/bench.py --weights     # only the weights of the current build
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
DEFAULT_BUDGET = 60.0
BUDGETS = {"book/deep_linear": 30.0}  # seconds; every other page gets DEFAULT_BUDGET
EXECUTED = re.compile(r"(\S+?)\.(?:md|ipynb): Executed notebook in ([0-9.]+) seconds")


def build(book: Path) -> tuple[str, float]:
    start = time.perf_counter()
    result = subprocess.run(
        [str(JUPYTER_BOOK), "build", "--warningiserror", "--keep-going", str(book)],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    log = result.stdout + result.stderr
    if result.returncode != 0:
        sys.stderr.write(log[-4000:])
        raise SystemExit(f"the build failed (exit {result.returncode})")
    return log, seconds


#: Limits on what a reader downloads to open a page (tests/test_weight.py).
HTML_LIMIT = 300 * 1024
TOTAL_LIMIT = 2 * 1024 * 1024


def page_weight(html_dir: Path, page: str) -> dict[str, int]:
    """Bytes a reader downloads to open ``page`` (``book/sawtooth``):

    - ``html``: the page's HTML;
    - ``total``: the HTML and every local image it shows when opened (an
      interactive figure's first frame; its other frames load when the slider
      reaches them and are counted in ``frames``), on a desktop or on a phone,
      whichever downloads more (a phone loads a figure's phone rendering,
      offered by ``<picture>``, in place of the figure);
    - ``assets``: the scripts and style sheets it loads (shared by all pages and
      cached by the browser after the first).
    """
    html_file = html_dir / f"{page}.html"
    text = html_file.read_text(errors="replace")
    html = html_file.stat().st_size

    def local(ref: str) -> Path | None:
        if ref.startswith(("data:", "http:", "https:", "//", "#")):
            return None
        path = (html_file.parent / ref.split("?")[0].split("#")[0]).resolve()
        return path if path.is_file() else None

    def total(refs) -> int:
        files = {p for p in map(local, refs) if p is not None}
        return sum(p.stat().st_size for p in files)

    shown = re.findall(r'<img[^>]+src="([^"]+)"', text)
    # a phone takes the <source> of a <picture> instead of its <img>
    pictures = re.findall(
        r'<picture><source[^>]+srcset="([^" ]+) 2x"[^>]*><img[^>]+src="([^"]+)"', text
    )
    instead = {img: phone for phone, img in pictures}
    on_phone = [instead.get(ref, ref) for ref in shown]
    frames = [
        ref
        for block in re.findall(
            r'class="whydeep-slider-frames">(.*?)</script>', text, re.DOTALL
        )
        for ref in re.findall(r'"([^"]+)"', block)
    ]
    assets = re.findall(r'<script[^>]+src="([^"]+)"', text) + re.findall(
        r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', text
    )
    return {
        "html": html,
        "total": html + max(total(shown), total(on_phone)),
        "frames": total(set(frames) - set(shown)),
        "assets": total(assets),
    }


def page_weights(html_dir: Path) -> dict[str, dict[str, int]]:
    """:func:`page_weight` of every page of the built book."""
    return {
        p.relative_to(html_dir).with_suffix("").as_posix(): page_weight(
            html_dir, p.relative_to(html_dir).with_suffix("").as_posix()
        )
        for p in sorted((html_dir / "book").glob("*.html"))
    }


def slowest_cells(notebook: Path, count: int = 3) -> list[tuple[float, str]]:
    """Execute ``notebook`` and return its ``count`` slowest cells as
    ``(seconds, first line of code)``, slowest first."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(
        nb,
        timeout=600,
        record_timing=True,
        resources={"metadata": {"path": str(notebook.parent)}},
    ).execute()
    timed = []
    for cell in nb.cells:
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = (
            timing.get("iopub.execute_input"),
            timing.get("shell.execute_reply"),
        )
        if cell.cell_type != "code" or not start or not end:
            continue
        seconds = (_when(end) - _when(start)).total_seconds()
        first = next((line for line in cell.source.splitlines() if line.strip()), "")
        timed.append((seconds, first[:60]))
    return sorted(timed, reverse=True)[:count]


def _when(stamp: str):
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="whydeep-bench-") as tmp:
        book = Path(tmp) / "book"
        shutil.copytree(
            ROOT,
            book,
            ignore=shutil.ignore_patterns(
                ".git", ".venv", "_build", "node_modules", "__pycache__", ".*cache"
            ),
        )
        # MathJax for the pages comes from the installed npm packages.
        (book / "node_modules").symlink_to(ROOT / "node_modules")
        print("cold build (empty cache) ...", flush=True)
        log, cold = build(book)
        print("rebuild with nothing changed ...", flush=True)
        relog, warm = build(book)

        executed = {}
        for path, seconds in EXECUTED.findall(log):
            page = Path(path).resolve().relative_to(book.resolve()).as_posix()
            executed[page] = float(seconds)
        rerun = EXECUTED.findall(relog)

        print("timing each page's cells ...", flush=True)
        cells = {
            page: slowest_cells(book / "_build" / "jupyter_execute" / f"{page}.ipynb")
            for page in executed
        }
        html_dir = book / "_build" / "html"
        rows, over = [], []
        for page in sorted(executed, key=lambda p: (p != "book/index", p)):
            budget = BUDGETS.get(page, DEFAULT_BUDGET)
            status = "ok" if executed[page] <= budget else "OVER"
            if status == "OVER":
                over.append(page)
            rows.append((page, f"{executed[page]:.1f}", f"{budget:.0f}", status))
        weights = page_weights(html_dir)

    header = ("page", "cold exec (s)", "budget (s)", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print()
    print(line(header))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))
    print()
    print(weight_table(weights))
    heavy = [
        p
        for p, w in weights.items()
        if w["html"] > HTML_LIMIT or w["total"] > TOTAL_LIMIT
    ]
    print()
    print("slowest cells of each page (s):")
    for page in (row[0] for row in rows):
        for seconds, first in cells[page]:
            print(f"  {page:<22} {seconds:6.1f}  {first}")
    print()
    print(f"full cold build:            {cold:6.1f} s")
    print(f"rebuild, nothing changed:   {warm:6.1f} s  (pages executed: {len(rerun)})")
    rehearsals()
    if over:
        print(f"over budget: {', '.join(over)}")
    if heavy:
        print(f"over the page weight limits: {', '.join(heavy)}")
    return 1 if over or heavy else 0


def weight_table(weights: dict[str, dict[str, int]]) -> str:
    """Each page's weight in KiB, with the limits."""
    header = ("page", "HTML", "HTML+images", "other frames", "scripts+CSS")
    rows = [
        (
            page,
            *(f"{w[k] / 1024:,.0f}" for k in ("html", "total", "frames", "assets")),
        )
        for page, w in weights.items()
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        f"page weight (KiB; limits: HTML {HTML_LIMIT // 1024}, "
        f"HTML+images {TOTAL_LIMIT // 1024}):"
    ]
    for row in [header, *rows]:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def rehearsals() -> None:
    """Time the Colab and Binder rehearsals (one kernel per chapter, in turn)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import rehearse

    if not (ROOT / "_build" / "html").is_dir():
        print("\nrehearsals: no built book in _build (make book)")
        return
    made = rehearse.setup()
    stamp = json.loads(rehearse.STAMP.read_text())
    print()
    print(
        f"rehearsal environment: {'made now in' if made else 'cached; it was made in'}"
        f" {stamp['seconds']:.0f} s"
    )
    for name, launch in (("colab", rehearse.colab), ("binder", rehearse.binder)):
        start = time.perf_counter()
        runs = launch()
        total = time.perf_counter() - start
        pages = ", ".join(
            f"{run.page.rsplit('/', 1)[-1]} {run.seconds:.0f}" for run in runs
        )
        widgets = sum(len(run.widgets) for run in runs)
        extra = f"; {widgets} live figures moved" if widgets else ""
        print(f"{name} rehearsal: {total:6.1f} s wall ({pages} s{extra})")


if __name__ == "__main__":
    if sys.argv[1:] == ["--weights"]:
        print(weight_table(page_weights(ROOT / "_build" / "html")))
        sys.exit(0)
    sys.exit(main())
