"""The whole book as one PDF: `make pdf`.

    python tools/pdf.py [--out _build/pdf/why-deep.pdf]

Route: Jupyter Book's single-page HTML build (``--builder singlehtml``, which
reuses the execution cache of ``make book``: nothing executes again), printed
by the installed headless Chromium. The printed book is what the web pages
show: the same figures, the formulas typeset by the MathJax copy inside the
site (no network), equation numbers, numbered chapters. For print the page
gets a title page and a table of contents with page numbers, every chapter
starts on a new page, code wraps instead of being cut off, and every exercise's
solution is shown. The PDF has bookmarks (Chromium's document outline) and
page numbers in its footer.

The table of contents' page numbers come from a first printing: Chromium
names a destination in the PDF after each chapter the contents link to, and
``pdfinfo -dests`` (poppler-utils) tells its page; the second printing shows
them.

The PDF is also copied beside the web site (``_build/html/why-deep.pdf``),
where the preface links to it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chromium

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
SINGLE = ROOT / "_build" / "singlehtml"
DEFAULT_OUT = ROOT / "_build" / "pdf" / "why-deep.pdf"
SITE_COPY = ROOT / "_build" / "html" / "why-deep.pdf"
# Sphinx writes the single page at the root document's path (book/index.html)
# with addresses relative to the output's root: a copy at the root reads right.
PAGE = "why-deep.html"
A4 = (8.27, 11.69)  # inches
MARGIN = 0.7  # inches

# Runs in the single page before printing; returns the chapters' titles.
PREPARE = r"""
(async () => {
  const article = document.querySelector('article.bd-article');
  // Every collapsed thing (solutions, hidden cells) is shown.
  document.querySelectorAll('.toggle-hidden').forEach(
      e => e.classList.remove('toggle-hidden'));
  document.querySelectorAll('details').forEach(d => d.open = true);
  // Every image loads now, not when scrolled to.
  document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager');
  await Promise.all([...document.images].map(i => i.complete ? 0 :
      new Promise(r => { i.addEventListener('load', r);
                         i.addEventListener('error', r); })));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise)
    await MathJax.startup.promise;
  // The chapters: the pages of the table of contents, each of which Sphinx's
  // single page marks with an anchor <span id="document-..."> before it.
  const book = article.querySelector('section');
  const chapters = [...document.querySelectorAll('span[id^="document-"]')]
      .map(span => span.nextElementSibling)
      .filter(s => s && s.tagName === 'SECTION');
  chapters.forEach(s => s.classList.add('whydeep-chapter'));
  const title = s => s.querySelector('h1, h2').textContent.replace(/#$/, '').trim();
  // Title page and contents, before the preface.
  const front = document.createElement('div');
  front.className = 'whydeep-front';
  const heading = book.querySelector('h1');
  const subtitle = book.querySelector('p em');
  front.innerHTML = `
    <div class="whydeep-title-page">
      <h1>${heading.textContent.replace(/#$/, '').trim()}</h1>
      <p class="whydeep-subtitle">${subtitle ? subtitle.textContent : ''}</p>
      <p class="whydeep-authors">${document.querySelector('meta[name=author]')
          ? document.querySelector('meta[name=author]').content
          : 'The Why Deep? authors'}</p>
      <p class="whydeep-built">%(built)s</p>
    </div>
    <nav class="whydeep-contents"><h2>Contents</h2><ol></ol></nav>`;
  const list = front.querySelector('ol');
  const entries = [['Preface', book.id, title(book)]].concat(
      chapters.map(s => [title(s), s.id, title(s)]));
  for (const [text, id] of entries) {
    const li = document.createElement('li');
    li.innerHTML = `<a href="#${id}"></a><span class="whydeep-page"></span>`;
    li.querySelector('a').textContent = text;
    list.appendChild(li);
  }
  book.parentElement.insertBefore(front, book);
  return entries.map(e => e[1]);
})()
"""

PRINT_CSS = r"""
@page { size: A4; }
.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-header-article,
.bd-footer, .bd-footer-article, .prev-next-area, .bd-footer-content,
#pst-skip-link, .header-article-items, .whydeep-slider input { display: none !important; }
.bd-main .bd-content .bd-article-container { max-width: 100% !important; }
.whydeep-title-page { height: 8in; display: flex; flex-direction: column;
  justify-content: center; text-align: center; break-after: page; }
.whydeep-title-page h1 { font-size: 3.2rem; margin-bottom: 0.5em; }
.whydeep-subtitle { font-size: 1.4rem; font-style: italic; }
.whydeep-authors { font-size: 1.1rem; margin-top: 3em; }
.whydeep-built { font-size: 0.9rem; color: #555; margin-top: 1em; }
.whydeep-contents { break-after: page; }
.whydeep-contents ol { list-style: none; padding: 0; }
.whydeep-contents li { display: flex; font-size: 1.1rem; margin: 0.5em 0; }
.whydeep-contents li a { flex: 1; color: inherit; text-decoration: none;
  border-bottom: 1px dotted #999; }
.whydeep-contents .whydeep-page { min-width: 2.5em; text-align: right; }
section.whydeep-chapter { break-before: page; }
/* the theme hides a page's first heading in print: the preface needs its own */
.bd-main .bd-content .bd-article section > h1:first-of-type { display: block !important; }
h1, h2, h3 { break-after: avoid; }
figure, .cell_output img, .whydeep-slider img, div.math, table { break-inside: avoid; }
div.highlight pre, .cell_output pre, .output pre { white-space: pre-wrap !important;
  overflow-wrap: anywhere; overflow: visible !important; }
a.headerlink { display: none !important; }
"""


def build_single_page() -> None:
    """The single-page HTML book (executes nothing that the cache holds)."""
    cmd = [
        str(JUPYTER_BOOK),
        "build",
        "--builder",
        "singlehtml",
        "--warningiserror",
        "--keep-going",
        str(ROOT),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write((result.stdout + result.stderr)[-4000:])
        raise SystemExit(f"the single-page build failed (exit {result.returncode})")


def _print(tools) -> bytes:
    answer = tools.send(
        "Page.printToPDF",
        paperWidth=A4[0],
        paperHeight=A4[1],
        marginTop=MARGIN,
        marginBottom=MARGIN,
        marginLeft=MARGIN,
        marginRight=MARGIN,
        printBackground=True,
        displayHeaderFooter=True,
        headerTemplate="<span></span>",
        footerTemplate=(
            '<div style="font-size:8px;width:100%;text-align:center;color:#555">'
            '<span class="pageNumber"></span></div>'
        ),
        generateDocumentOutline=True,
        generateTaggedPDF=True,
    )
    return base64.b64decode(answer["data"])


def page_texts(pdf: Path) -> list[str]:
    """The text of each page of ``pdf`` (pdftotext, pages split at form feeds)."""
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return text.split("\f")


def destinations(pdf: Path) -> dict[str, int]:
    """Page (1-based) of each named destination of ``pdf`` (``pdfinfo -dests``):
    Chromium names one after every element that a link of the page points to."""
    listing = subprocess.run(
        ["pdfinfo", "-dests", str(pdf)], capture_output=True, text=True, check=True
    ).stdout
    found = {}
    for line in listing.splitlines()[1:]:
        match = re.match(r"\s*(\d+)\s+\[.*\]\s+\"(.*)\"$", line)
        if match:
            found.setdefault(match[2], int(match[1]))
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--no-build", action="store_true", help="print the existing single page"
    )
    args = parser.parse_args(argv)
    for tool in ("pdftotext", "pdfinfo"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install poppler-utils")
    if chromium.find_browser() is None:
        raise SystemExit("chromium is missing: apt-get install chromium")
    start = time.perf_counter()
    if not args.no_build:
        build_single_page()
    built = time.perf_counter()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.strip()
    stamp = f"Built {time.strftime('%d %B %Y')}" + (f" from {commit}" if commit else "")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(SINGLE / "book" / "index.html", SINGLE / PAGE)
    with chromium.serve(SINGLE) as site, chromium.launch(timeout=120) as tools:
        tools.send("Page.enable")
        tools.send("Emulation.setEmulatedMedia", media="print")
        tools.open(f"{site}/{PAGE}")
        tools.evaluate(
            "(() => { const s = document.createElement('style');"
            f"s.textContent = {json.dumps(PRINT_CSS)};"
            "document.head.appendChild(s); })()"
        )
        ids = tools.evaluate(PREPARE % {"built": stamp})
        args.out.write_bytes(_print(tools))
        where = destinations(args.out)
        pages = [where.get(i) for i in ids]
        missing = [i for i, p in zip(ids, pages, strict=True) if p is None]
        if missing:
            raise SystemExit(f"pdf: chapters missing from the printed book: {missing}")
        tools.evaluate(
            "((pages) => document.querySelectorAll('.whydeep-contents li')"
            ".forEach((li, i) => li.querySelector('.whydeep-page').textContent"
            f" = pages[i] || '')) ({json.dumps(pages)})"
        )
        args.out.write_bytes(_print(tools))
    if args.out.resolve() != SITE_COPY.resolve() and SITE_COPY.parent.is_dir():
        shutil.copy2(args.out, SITE_COPY)
    info = subprocess.run(
        ["pdfinfo", str(args.out)], capture_output=True, text=True, check=True
    ).stdout
    count = next(
        line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")
    )
    done = time.perf_counter()
    print(
        f"pdf: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
        f" ({count} pages, {os.path.getsize(args.out) / 2**20:.1f} MiB); "
        f"single-page build {built - start:.0f} s, printing {done - built:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
