"""Measure the book on this machine: `make bench`.

Copies the book to a temporary folder (so the working build and its cache are
untouched), then prints one table:

- each page's cold execution seconds, read from the build's own log, next to
  its budget (a chapter must execute in at most 60 s on a 2-core machine);
- each page's HTML size, including the images it shows;
- the whole cold build, and a rebuild with nothing changed;
- each page's slowest cells (its experiments), timed by executing the built
  notebooks once more, cell by cell.

Then it times the launch rehearsals of ``make test`` (tools/rehearse.py) on the
working checkout: the Colab run of every published notebook (with the
live-widget check), the Binder run, and what making their environment took.

Exits with status 1 when a page is over its budget.
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


def page_size(html_dir: Path, page: str) -> int:
    """Bytes of a page's HTML plus every local image it references."""
    html_file = html_dir / f"{page}.html"
    text = html_file.read_text(errors="replace")
    size = html_file.stat().st_size
    seen = set()
    for src in re.findall(r'<img[^>]+src="([^"]+)"', text):
        if src.startswith(("data:", "http:", "https:")) or src in seen:
            continue
        seen.add(src)
        image = (html_file.parent / src).resolve()
        if image.is_file():
            size += image.stat().st_size
    return size


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
            kib = page_size(html_dir, page) / 1024
            rows.append(
                (page, f"{executed[page]:.1f}", f"{budget:.0f}", status, f"{kib:,.0f}")
            )

    header = ("page", "cold exec (s)", "budget (s)", "", "HTML+images (KiB)")
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
        return 1
    return 0


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
    sys.exit(main())
