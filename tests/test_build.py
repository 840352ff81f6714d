"""The build is never stale: editing the package re-executes the pages.

Builds a copy of the book that holds only the preface and the conventions page
(whose cells print ``whydeep.nets.n_params``), then: rebuilds with nothing
changed and checks nothing executes; changes ``n_params`` in the copy's package
and rebuilds with a plain ``jupyter-book build`` and checks the new value is in
the HTML.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
EXECUTED = re.compile(r"Executing notebook")

pytestmark = pytest.mark.build


def _copy_book(dest: Path) -> None:
    ignore = shutil.ignore_patterns(
        ".git",
        ".venv",
        "_build",
        "node_modules",
        "__pycache__",
        "*.egg-info",
        ".*cache",
    )
    shutil.copytree(ROOT, dest, ignore=ignore)
    # MathJax for the pages comes from the installed npm packages.
    (dest / "node_modules").symlink_to(ROOT / "node_modules")
    (dest / "_toc.yml").write_text(
        "format: jb-book\nroot: book/index\nchapters:\n  - file: book/conventions\n"
    )


def _build(book: Path) -> tuple[str, float]:
    env = dict(os.environ)
    # The kernels must import the copy's package, not the installed one.
    env["PYTHONPATH"] = str(book / "src") + os.pathsep + env.get("PYTHONPATH", "")
    start = time.perf_counter()
    result = subprocess.run(
        [str(JUPYTER_BOOK), "build", str(book)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.perf_counter() - start
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    return log, seconds


def _conventions_html(book: Path) -> str:
    return (book / "_build" / "html" / "book" / "conventions.html").read_text()


def test_rebuild_reuses_cache_and_package_edit_reexecutes(tmp_path):
    book = tmp_path / "book-copy"
    _copy_book(book)

    log, _ = _build(book)
    assert EXECUTED.search(log), "the first build must execute the pages"
    assert "n_params(10, 3, 2) = 33" in _conventions_html(book)

    log, seconds = _build(book)
    assert not EXECUTED.search(log), "a rebuild with nothing changed executed a page"
    assert seconds < 15, f"a no-change rebuild took {seconds:.1f} s"

    nets = book / "src" / "whydeep" / "nets.py"
    nets.write_text(
        nets.read_text() + "\n\ndef n_params(*args, **kwargs):\n    return 271828\n"
    )
    log, _ = _build(book)
    assert EXECUTED.search(log), "the package changed but no page executed"
    assert "n_params(10, 3, 2) = 271828" in _conventions_html(book), (
        "the page still shows the old package's output"
    )


def test_one_page_builds_alone_with_warnings_as_errors(tmp_path):
    """``make page``: a page with the preface and the conventions, whose links to
    the chapters left out are the only warnings allowed."""
    book = tmp_path / "book"
    _copy_book(book)
    result = subprocess.run(
        [sys.executable, str(book / "tools" / "build_page.py"), "conventions"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    html = book / "_build" / "page-conventions" / "_build" / "html" / "book"
    assert (html / "conventions.html").is_file() and (html / "index.html").is_file()
