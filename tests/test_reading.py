"""How the pages read (``_ext/whydeep_reading.py`` and the theme settings).

Unit tests of the extension's pieces, and checks over the built HTML
(``make book``): proofs keep their numbered steps, reference lists are
labelled author–year like the text, the execution-statistics page lists each
page and the package versions, every page has the favicon and loads MathJax
from the site itself.
"""

from __future__ import annotations

import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("WHYDEEP_BUILD_DIR", ROOT / "_build")) / "html"
sys.path.insert(0, str(ROOT / "_ext"))
import whydeep_reading  # noqa: E402

built = pytest.mark.skipif(
    not (HTML / "book").is_dir(), reason=f"no built book in {HTML}: run make book"
)


def _pages() -> list[Path]:
    return sorted((HTML / "book").glob("*.html")) if (HTML / "book").is_dir() else []


def test_author_year_labels():
    from pybtex.database import parse_string
    from pybtex.plugin import find_plugin

    whydeep_reading._register_bibliography_style()
    bib = parse_string(
        r"""
        @misc{a, author = {George Cybenko}, title = {A}, year = {1989}}
        @misc{b, author = {Xavier Glorot and Yoshua Bengio}, title = {B},
                 year = {2010}}
        @misc{c, author = {Guido Mont{\'u}far and Razvan Pascanu and
                 Kyunghyun Cho and Yoshua Bengio}, title = {C}, year = {2014}}
        @misc{d, author = {George Cybenko}, title = {D}, year = {1989}}
        """,
        "bibtex",
    )
    style = find_plugin("pybtex.style.formatting", "whydeep")()
    labels = [e.label for e in style.format_entries(bib.entries.values())]
    assert labels == [
        "Cybenko, 1989a",
        "Cybenko, 1989b",
        "Glorot and Bengio, 2010",
        "Montúfar et al., 2014",
    ]


def test_merge_streams_joins_runs_of_printed_output():
    from docutils import nodes

    def stream(text, *extra):
        block = nodes.literal_block(text, text)
        block["classes"] += ["output", "stream", *extra]
        return block

    cell = nodes.container()
    cell += [stream("a\n"), stream("b\n"), stream("c"), stream("e\n", "stderr")]
    cell += nodes.paragraph(text="figure")
    cell += stream("d\n")
    document = nodes.document(None, None)
    document += cell
    assert whydeep_reading.merge_streams(document) == 2
    assert [c.astext() for c in cell.children] == ["a\nb\nc", "e\n", "figure", "d\n"]


def test_subset_icons_keeps_the_named_icons_and_their_aliases():
    script = (
        'var a={bars:[448,512,["navicon"],"f0c9","M0 96z"],'
        '"magnifying-glass":[512,512,[128269,"search"],"f002","M416 208z"],'
        'yelp:[384,512,[],"f1e9","M42 240z"]};defineIcons("fas",a);'
    )
    kept = whydeep_reading.subset_icons(script, {"search", "navicon", "xmark"})
    assert "bars:" in kept and '"magnifying-glass":' in kept
    assert "yelp" not in kept and kept.endswith('defineIcons("fas",a);')
    assert whydeep_reading.subset_icons(script, set()).startswith("var a={}")


def test_the_built_icon_script_holds_only_the_icons_the_site_names():
    icons = HTML / "_static" / "scripts" / "fontawesome.js"
    if not icons.is_file():
        pytest.skip("no built book: run make book")
    text = icons.read_text()
    names = {m.group("key").strip('"') for m in whydeep_reading._ICON.finditer(text)}
    assert {"bars", "magnifying-glass", "list", "xmark"} <= names
    assert len(names) < 40 and icons.stat().st_size < 200_000


def test_png_text_reads_nothing_from_other_files():
    assert whydeep_reading.png_text(b"GIF89a...") == {}


def test_pinned_requirements_reads_the_pins():
    pins = dict(whydeep_reading.pinned_requirements(ROOT / "requirements.txt"))
    assert pins["jupyter-book"] == "1.0.4.post1"
    assert "pydata-sphinx-theme" in pins


@built
@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.stem)
def test_proofs_keep_their_steps(page):
    text = page.read_text(encoding="utf-8")
    for proof in re.findall(
        r'<div class="proof admonition" id="proof">(.*?)</div>', text, re.DOTALL
    ):
        assert not re.search(r"Proof\.\s+1\.\s", proof), (
            f"{page.name}: a proof's numbered steps were run together: {proof[:200]}"
        )
        assert "Proof." in proof


@built
@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.stem)
def test_reference_lists_are_author_year_and_math_is_local(page):
    text = page.read_text(encoding="utf-8")
    labels = re.findall(
        r'<span class="label"><span class="fn-bracket">\[</span>'
        r"(?:<a[^>]*>)?([^<]*)",
        text,
    )
    for label in labels:
        assert re.fullmatch(r".+, (\d{4}[a-z]?|n\.d\.)", label), (
            f"{page.name}: reference labelled {label!r}, not author-year"
        )
    assert 'rel="icon"' in text, f"{page.name}: no favicon"
    assert "cdn.jsdelivr" not in text
    if 'class="math' in text:
        assert "_static/mathjax/tex-chtml.js" in text, f"{page.name}: MathJax"


@built
def test_execution_page_lists_pages_and_versions():
    text = (HTML / "book" / "execution.html").read_text(encoding="utf-8")
    for page in ("sawtooth", "autodiff"):
        if (HTML / "book" / f"{page}.html").is_file():
            assert page in text, f"the execution table does not list {page}"
    assert "jupyter-book" in text and "1.0.4.post1" in text
    assert "not installed" not in text


#: Characters of printed output that fit the page column at desktop width
#: (the monospace font of a 1280 px window shows 76 in the column).
OUTPUT_COLUMNS = 76


class _PrintedOutput(HTMLParser):
    """The text of every ``<pre>`` inside a cell's output block."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # <div> nesting; the output block is open while > 0
        self.in_pre = False
        self.blocks: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "div":
            classes = (dict(attrs).get("class") or "").split()
            if self.depth or "cell_output" in classes:
                self.depth += 1
        elif tag == "pre" and self.depth:
            self.in_pre = True
            self.blocks.append("")

    def handle_endtag(self, tag):
        if tag == "div" and self.depth:
            self.depth -= 1
        elif tag == "pre":
            self.in_pre = False

    def handle_data(self, data):
        if self.in_pre:
            self.blocks[-1] += data


@built
@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.stem)
def test_printed_output_fits_the_column(page):
    parser = _PrintedOutput()
    parser.feed(page.read_text(encoding="utf-8"))
    wide = [
        line
        for block in parser.blocks
        for line in block.splitlines()
        if len(line) > OUTPUT_COLUMNS
    ]
    assert not wide, (
        f"{page.name}: {len(wide)} printed line(s) wider than {OUTPUT_COLUMNS} "
        f"characters, e.g. {wide[0]!r}"
    )
