"""The book as a PDF (`make pdf`, tools/pdf.py): checked from its text and images.

``pdfinfo``, ``pdftotext`` and ``pdfimages`` (poppler-utils) read the PDF:
it has a title page and a table of contents with page numbers, every page of
the table of contents (_toc.yml) appears as a chapter with its title, no raw
TeX is left in the text (every formula was typeset), equation numbers are
there, the figures are embedded, code lines are not cut off, and the
exercises' solutions are printed. Skipped when no PDF was made.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("WHYDEEP_BUILD_DIR", ROOT / "_build"))
PDF = BUILD / "pdf" / "why-deep.pdf"
sys.path.insert(0, str(ROOT / "tools"))
import pdf as pdf_tool  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not PDF.is_file(), reason=f"no {PDF}: run make pdf"),
    pytest.mark.skipif(
        shutil.which("pdftotext") is None, reason="no poppler-utils here"
    ),
]

# TeX that MathJax would have turned into a formula: a delimiter or a command.
RAW_TEX = re.compile(
    r"\\\(|\\\)|\\\[|\\\]|\$\$|\\(frac|sum|mathbf|mathrm|sigma|top|begin|end|"
    r"partial|operatorname|left|right|qquad|cdot|odot)\b"
)


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def pages() -> list[str]:
    return pdf_tool.page_texts(PDF)


@pytest.fixture(scope="module")
def text(pages) -> str:
    return " ".join(" ".join(pages).split())


def _toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"]]


def _title(page: str) -> str:
    source = (ROOT / f"{page}.md").read_text(encoding="utf-8")
    return re.search(r"^# (.+)$", source, re.MULTILINE).group(1).strip()


def test_page_count_and_front_matter(pages):
    info = _run("pdfinfo", str(PDF))
    count = int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1))
    chapters = len(_toc_pages())
    assert count >= 4 * chapters, f"{count} pages for {chapters} chapters"
    assert "Why Deep?" in pages[0], "no title page"
    assert "Contents" in pages[1]
    # the contents give each chapter's page number, in increasing order (each
    # entry is a line "title .... page"; the page's own number stands alone)
    numbers = [
        int(m[1]) for m in re.finditer(r"^\s*\S.*?\s(\d+)\s*$", pages[1], re.MULTILINE)
    ]
    assert len(numbers) >= chapters and numbers == sorted(numbers), pages[1]
    assert numbers[-1] <= count


def test_every_chapter_is_there_numbered(text):
    for number, page in enumerate(
        [p for p in _toc_pages() if p != "book/conventions"], start=1
    ):
        if page == "book/execution":
            continue
        title = _title(page)
        assert f"{number}. {title}" in text, f"no chapter '{number}. {title}'"
    assert _title("book/conventions") in text


def test_no_raw_tex_and_equation_numbers(text):
    found = RAW_TEX.findall(text)
    assert not found, f"raw TeX in the PDF's text: {sorted(set(found))[:10]}"
    assert re.search(r"\(1\.\d+\)", text), "no numbered equation of chapter 1"


def test_figures_are_embedded():
    listing = _run("pdfimages", "-list", str(PDF)).splitlines()[2:]
    images = [line for line in listing if line.split()[2] == "image"]
    html = (BUILD / "html" / "book").glob("*.html")
    figures = sum(
        len(re.findall(r'<img[^>]+class="[^"]*"', p.read_text(encoding="utf-8")))
        + p.read_text(encoding="utf-8").count('<div class="whydeep-slider"')
        for p in html
    )
    assert len(images) >= max(1, figures // 2), (
        f"{len(images)} images in the PDF for about {figures} figures on the site"
    )


def test_code_is_not_cut_off_and_solutions_are_printed(text):
    # A long line of the book's code: printed whole (it wraps, never clipped).
    assert "plotting.use_style()" in text
    assert "Solution to" in text, "no exercise's solution in the PDF"


def test_published_beside_the_site_and_linked_from_the_preface():
    copy = BUILD / "html" / "why-deep.pdf"
    assert copy.is_file(), "make pdf did not copy the PDF beside the site"
    assert copy.read_bytes() == PDF.read_bytes()
    preface = (BUILD / "html" / "book" / "index.html").read_text(encoding="utf-8")
    assert 'href="../why-deep.pdf"' in preface
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "why-deep.pdf" in readme
