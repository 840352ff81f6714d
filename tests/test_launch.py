"""A reader's launch, rehearsed: the notebooks readers open, and running them.

- The notebooks Colab and Binder open are rendered for a notebook reader
  (``tools/notebooks.py``): no MyST markup left, solutions gathered under a
  "Solutions" heading after every exercise, equation and theorem numbers as in
  the built book, and every link into the book pointing at an anchor that exists.
- The Colab rehearsal (``tools/rehearse.py``): every published notebook, its
  install cell pointed at this checkout, run top to bottom in a fresh kernel in
  an empty folder; the text outputs equal the book's under nbval's rules.
- Live widgets: in that kernel, every interactive figure shows ipywidgets
  controls, and moving each control draws a different figure.
- The Binder rehearsal: postBuild in a clone, then every notebook it writes,
  run where Binder opens it, with the same outputs.
- A package that forgets a runtime dependency fails the Colab rehearsal.

The rehearsals need the built book (``make book``) and the rehearsal
environment (``make rehearsal-env``, made once); they are marked ``build``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import notebooks  # noqa: E402  (tools/notebooks.py)
import rehearse  # noqa: E402  (tools/rehearse.py)

BUILD = Path(os.environ.get("WHYDEEP_BUILD_DIR", ROOT / "_build"))
HTML = BUILD / "html"
CONFIG = notebooks.load_config(ROOT)
INDEX = notebooks.book_index(ROOT, CONFIG)
BASE = notebooks.pages_url(CONFIG)
FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"
PAGES = notebooks.executable_pages(ROOT)


# --------------------------------------------------------------------------
# Rendering MyST for a notebook reader
# --------------------------------------------------------------------------

SAMPLE = """\
# A page

As {cite:t}`saxe2014exact` show, and others agree {cite}`cybenko1989approximation`,

$$
y = x
$$ (page-eq-one)

so {eq}`page-eq-one` holds; see {prf:ref}`page-thm` and {ref}`page-ex`.

````{prf:theorem} A claim
:label: page-thm

It holds:

```python
print("a fence inside")
```
````

```{prf:proof}
By {eq}`page-eq-one`.
```

:::{note}
A colon fence.
:::

## Exercises

```{exercise} Try it
:label: page-ex

Do it.
```

```{solution-start} page-ex
:class: dropdown
```

The answer is SECRET-ANSWER.
"""


def _sample_notebook():
    cells = [
        nbformat.v4.new_markdown_cell(SAMPLE),
        nbformat.v4.new_code_cell("print('solution code')"),
        nbformat.v4.new_markdown_cell(
            "More of the solution.\n\n```{solution-end}\n```\n\n"
            "## References\n\n```{bibliography}\n:filter: docname in docnames\n```"
        ),
    ]
    return nbformat.v4.new_notebook(cells=cells)


@pytest.fixture(scope="module")
def sample_index():
    targets = {}
    title = notebooks.index_page("book/page", SAMPLE, "7", targets)
    assert title == "A page"
    return notebooks.BookIndex(
        BASE, {"book/page": title}, {"book/page": "7"}, targets, INDEX.bibliography
    )


def test_rendered_figures_leave_their_phone_rendering_behind(sample_index):
    import base64

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from whydeep import plotting

    fig = plt.figure(figsize=(8, 3))
    fig.add_subplot().plot([0, 1])
    wide, phone = plotting.png_bytes(fig), plotting.phone_png(fig)
    plt.close(fig)
    both = base64.b64encode(plotting.with_phone(wide, phone)).decode()
    cell = nbformat.v4.new_code_cell("plt.show()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": both})]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    (rendered,) = notebooks.render_notebook(
        notebook, "book/page", sample_index, ROOT
    ).cells
    shown = base64.b64decode(rendered.outputs[0]["data"]["image/png"])
    assert shown == wide
    assert cell.outputs[0]["data"]["image/png"] == both  # the input is untouched


def test_renders_roles_directives_equations_and_moves_the_solution(sample_index):
    rendered = notebooks.render_notebook(
        _sample_notebook(), "book/page", sample_index, ROOT
    )
    text = "\n".join(c.source for c in rendered.cells if c.cell_type == "markdown")
    assert notebooks.myst_markup(text) == []
    page = f"{BASE}book/page.html"
    assert f"[Saxe et al. (2014)]({page}#references)" in text
    assert f"([Cybenko, 1989]({page}#references))" in text
    assert "\\tag{7.1}" in text
    assert f"[(7.1)]({page}#equation-page-eq-one)" in text
    assert f"[Theorem 7.1]({page}#page-thm)" in text
    assert f"[Exercise 7.1]({page}#page-ex)" in text
    assert "> **Theorem 7.1** (A claim)" in text
    assert '> print("a fence inside")' in text  # the inner code fence survives
    assert "*Proof.*" in text and "> **Note**" in text
    assert "> **Exercise 7.1** (Try it)" in text
    # The solution (text and code) comes after the exercise, under Solutions,
    # and the references come last, listing what was cited.
    kinds = [(c.cell_type, c.source) for c in rendered.cells]
    where = {
        "exercise": next(i for i, (_, s) in enumerate(kinds) if "Exercise 7.1**" in s),
        "heading": next(
            i for i, (_, s) in enumerate(kinds) if s.startswith("## Solutions")
        ),
        "answer": next(i for i, (_, s) in enumerate(kinds) if "SECRET-ANSWER" in s),
        "code": next(i for i, (_, s) in enumerate(kinds) if "solution code" in s),
        "refs": next(i for i, (_, s) in enumerate(kinds) if "## References" in s),
    }
    assert where["exercise"] < where["heading"] < where["answer"] < where["code"]
    assert where["code"] < where["refs"] == len(kinds) - 1
    assert "Saxe, Andrew" not in kinds[-1][1] and "Andrew M. Saxe" in kinds[-1][1]
    assert "SECRET-ANSWER" not in kinds[where["exercise"]][1]
    solution_tags = [
        c.metadata.get("tags", [])
        for c in rendered.cells[where["heading"] : where["refs"]]
    ]
    assert all(notebooks.SOLUTION_CELL_TAG in tags for tags in solution_tags)
    assert rendered.cells[where["heading"]].metadata["jp-MarkdownHeadingCollapsed"]
    nbformat.validate(rendered)


def test_markup_detector_finds_what_rendering_removes():
    assert notebooks.myst_markup("see {cite}`x` and\n$$ a $$ (lab)\n")
    assert notebooks.myst_markup("```{prf:theorem} T\nbody\n```")
    assert notebooks.myst_markup(":::{note}\nbody\n:::")
    assert notebooks.myst_markup("(target)=\n# Heading")
    assert notebooks.myst_markup("plain $x$ and `code` and ```python\n```") == []


def test_unknown_references_and_citations_fail_loudly(sample_index):
    for bad in ("{eq}`nowhere`", "{cite}`nobody2020`"):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(bad)])
        with pytest.raises(ValueError, match=r"nowhere|nobody2020"):
            notebooks.render_notebook(notebook, "book/page", sample_index, ROOT)


def test_latex_accents_of_the_bibliography_become_unicode():
    assert notebooks.latex_text(r"At{\i}l{\i}m G{\"u}ne{\c{s}}") == "Atılım Güneş"
    for fields in INDEX.bibliography.values():
        assert "\\" not in notebooks.reference_text(fields), fields


# --------------------------------------------------------------------------
# Every notebook a reader opens: from the sources (Binder) and the build (Colab)
# --------------------------------------------------------------------------


def _check_reader_notebook(notebook, page: str, label: str) -> None:
    markdown = [c for c in notebook.cells if c.cell_type == "markdown"]
    for cell in markdown:
        left = notebooks.myst_markup(cell.source)
        assert not left, f"{label}: MyST markup left: {left}"
    source = (ROOT / f"{page}.md").read_text(encoding="utf-8")
    solutions = [
        line.split("}", 1)[1].strip()
        for line in source.splitlines()
        if re.match(r"^`{3,}\{solution-start\}", line)
    ]
    exercises = len(re.findall(r"^`{3,}\{exercise\}", source, re.M))
    heading = [
        i
        for i, c in enumerate(notebook.cells)
        if c.cell_type == "markdown"
        and c.source.startswith(notebooks.SOLUTIONS_HEADING)
    ]
    if not solutions:
        assert not heading, label
        return
    assert len(heading) == 1, f"{label}: one Solutions section"
    first = heading[0]
    # Every exercise is before the solutions, every solution cell after them.
    shown = [
        i
        for i, c in enumerate(notebook.cells)
        if c.cell_type == "markdown" and re.search(r"\*\*Exercise [\d.]+\*\*", c.source)
    ]
    assert len(shown) == exercises and max(shown) < first, label
    for i, cell in enumerate(notebook.cells):
        tagged = notebooks.SOLUTION_CELL_TAG in cell.metadata.get("tags", [])
        assert tagged == (first <= i and not cell.source.startswith("## References")), (
            f"{label}: cell {i} is {'a' if tagged else 'not a'} solution cell"
        )
    titles = [
        c.source.splitlines()[0]
        for c in notebook.cells
        if c.source.startswith("### Solution to ")
    ]
    assert len(titles) == len(solutions), label
    # No sentence of a solution is in plain view before the Solutions heading.
    before = "\n".join(c.source for c in notebook.cells[:first])
    for cell in notebook.cells[first:]:
        for line in cell.source.splitlines():
            if len(line) > 50 and not line.startswith(("#", "(", "import", "from")):
                assert line not in before, f"{label}: solution line in view: {line}"


@pytest.fixture(scope="module")
def source_notebooks(tmp_path_factory):
    out = tmp_path_factory.mktemp("binder-notebooks")
    written = notebooks.write_source_notebooks(ROOT, out, CONFIG)
    return {page: out / path for page, path in zip(PAGES, written, strict=True)}


def test_binder_notebooks_read_well_outside_the_book(source_notebooks):
    assert PAGES, "no executable page in the table of contents"
    for page, path in source_notebooks.items():
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert all(
            not c.get("outputs") for c in notebook.cells if c.cell_type == "code"
        )
        _check_reader_notebook(notebook, page, f"binder {page}")


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    if not HTML.is_dir():
        pytest.skip(f"no built book in {HTML}: run `make book` first")
    out = tmp_path_factory.mktemp("notebooks-branch")
    notebooks.write_notebooks(BUILD, out, CONFIG, FAKE_COMMIT)
    return {
        page: out / notebooks._path_in_repo(CONFIG, page, ".ipynb")
        for page in notebooks.executed_pages(BUILD)
    }


def test_colab_notebooks_read_well_outside_the_book(published):
    for page, path in published.items():
        notebook = nbformat.read(path, as_version=4)
        assert notebook.cells[0].id == notebooks.INSTALL_CELL_ID
        _check_reader_notebook(notebook, page, f"colab {page}")


def _anchors(page: str) -> dict[str, str]:
    soup = BeautifulSoup((HTML / f"{page}.html").read_text(), "html.parser")
    return {tag["id"]: tag.get_text(" ", strip=True) for tag in soup.find_all(id=True)}


def test_numbers_and_links_agree_with_the_built_book(published):
    """Every \\tag and "Theorem 3.1" is the built page's; every link into the
    book names a page and an anchor that exist."""
    anchors = {page: _anchors(page) for page in notebooks.toc_pages(ROOT)[0]}
    for label, target in INDEX.targets.items():
        found = anchors[target.page].get(target.anchor)
        assert found is not None, f"{label}: no #{target.anchor} in {target.page}.html"
        numbered = re.fullmatch(r"\(([\d.]+)\)|[A-Z][a-z]+ ([\d.]+)", target.name)
        if numbered:
            number = target.name.strip("()")
            assert number in found, f"{label}: book shows {found[:80]!r}, not {number}"
    link = re.compile(re.escape(BASE) + r"([\w/.-]+)\.html(?:#([\w.:-]+))?")
    checked = 0
    for path in published.values():
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "markdown":
                continue
            for page, anchor in link.findall(cell.source):
                assert page in anchors, f"link to a page the book lacks: {page}"
                assert not anchor or anchor in anchors[page], f"{page}#{anchor}"
                checked += 1
    assert checked > 20


# --------------------------------------------------------------------------
# The rehearsals
# --------------------------------------------------------------------------


def _needs_environment():
    if not HTML.is_dir():
        pytest.skip(f"no built book in {HTML}: run `make book` first")
    if not rehearse.environment_ready():
        pytest.fail("no rehearsal environment: run `make rehearsal-env` (made once)")


def _book(page: str):
    """The book's outputs (from the execution cache when MyST-NB left the
    page's notebook without them)."""
    return notebooks.read_executed(BUILD, page)


@pytest.fixture(scope="module")
def colab_runs():
    _needs_environment()
    runs = rehearse.colab(BUILD, ROOT)
    return {run.page: run for run in runs}


@pytest.mark.build
def test_colab_rehearsal_runs_every_published_notebook_like_the_book(colab_runs):
    assert set(colab_runs) == set(notebooks.executed_pages(BUILD))
    for page, run in colab_runs.items():
        first = run.notebook.cells[0]
        assert first.id == notebooks.INSTALL_CELL_ID
        assert "git+file://" in first.source  # it installed this checkout
        problems = rehearse.compare(_book(page), run.notebook)
        assert not problems, f"{page}:\n" + "\n".join(problems)


@pytest.mark.build
def test_every_interactive_figure_is_live_and_redraws(colab_runs):
    total = 0
    for page, run in colab_runs.items():
        book = _book(page)
        static = sum(
            any(map(rehearse.is_static_slider, c.outputs))
            for c in book.cells
            if c.cell_type == "code"
        )
        live = [report for report in run.widgets if report["interactive"]]
        assert len(live) == static, (
            f"{page}: {static} interactive figures in the book, "
            f"{len(live)} live ones in the rehearsal"
        )
        for report in live:
            where = f"{page}, cell {report['cell']}"
            assert report["controls"], f"{where}: no control"
            for control in report["controls"]:
                name = f"{where}, {control['description']}"
                assert control["type"].endswith("Slider"), name
                assert control["first"], f"{name}: no figure drawn"
                assert control["first"] == control["first_again"], (
                    f"{name}: the same value drew two different figures"
                )
                assert control["moved"] and control["moved"] != control["first"], (
                    f"{name}: moving to {control['moved_to']} changed nothing"
                )
            total += 1
    assert total >= 1, "the book has no interactive figure to check"


@pytest.mark.build
def test_binder_rehearsal_runs_every_chapter_like_the_book():
    _needs_environment()
    runs = {run.page: run for run in rehearse.binder(ROOT)}
    assert set(runs) == set(PAGES)
    for page, run in runs.items():
        problems = rehearse.compare(_book(page), run.notebook)
        assert not problems, f"{page}:\n" + "\n".join(problems)


@pytest.mark.build
def test_a_missing_runtime_dependency_fails_the_colab_rehearsal(tmp_path):
    """pyproject.toml without matplotlib, in a clone: the first chapter fails."""
    from nbclient.exceptions import CellExecutionError

    _needs_environment()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    pyproject = clone / "pyproject.toml"
    text = pyproject.read_text()
    assert '"matplotlib>=' in text
    pyproject.write_text(re.sub(r'\n\s*"matplotlib>=[^"]*",', "", text))
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "x"],
        cwd=clone,
        check=True,
    )
    page = notebooks.executed_pages(BUILD)[0]
    with pytest.raises(CellExecutionError, match="matplotlib"):
        rehearse.colab(BUILD, clone, pages=[page], widgets=False)


def test_launch_buttons_are_rewritten_to_the_notebooks():
    sys.path.insert(0, str(ROOT / "_ext"))
    import whydeep_launch

    binder = "https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/book/x.md"
    assert whydeep_launch.binder_notebook_url(binder, "notebooks") == (
        "https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/notebooks/book/x.ipynb"
    )
    colab = "https://colab.research.google.com/github/o/r/blob/main/book/x.md"
    assert whydeep_launch.colab_notebook_url(colab, "notebooks") == (
        "https://colab.research.google.com/github/o/r/blob/notebooks/book/x.ipynb"
    )
    with pytest.raises(ValueError, match="url="):
        whydeep_launch.binder_notebook_url("https://mybinder.org/v2/gh/o/r/main", "n")


def test_rehearsal_swaps_only_the_torch_index_line():
    text = (ROOT / "binder" / "requirements.txt").read_text()
    swapped = rehearse.rehearsal_requirements(text, "/somewhere/wheels")
    old, new = text.splitlines(), swapped.splitlines()
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert changed == [
        (
            "--extra-index-url https://download.pytorch.org/whl/cpu",
            "--find-links /somewhere/wheels",
        )
    ]
    assert rehearse.rehearsal_requirements(text, None) == text


def test_comparison_follows_nbval_rules():
    def cell(*outputs):
        return nbformat.v4.new_code_cell(
            "x", outputs=[nbformat.from_dict(o) for o in outputs]
        )

    book = nbformat.v4.new_notebook(
        cells=[
            cell(
                {
                    "output_type": "stream",
                    "name": "stdout",
                    "text": "a\nb 1.5 ms wall-clock\n",
                }
            )
        ]
    )
    same = nbformat.v4.new_notebook(
        cells=[
            cell(
                {"output_type": "stream", "name": "stdout", "text": "a\n"},
                {
                    "output_type": "stream",
                    "name": "stdout",
                    "text": "b 9.9 ms wall-clock\n",
                },
            )
        ]
    )
    other = nbformat.v4.new_notebook(
        cells=[cell({"output_type": "stream", "name": "stdout", "text": "a\nc\n"})]
    )
    timings = [(r"[0-9.]+ ms wall-clock", "<time> wall-clock")]  # a sanitize rule
    assert rehearse.compare(book, same, timings) == []
    assert rehearse.compare(book, same, [])  # without the rule, they differ
    assert rehearse.compare(book, other, timings)
    book.cells[0].metadata["tags"] = ["nbval-ignore-output"]  # as nbval: skipped
    assert rehearse.compare(book, other, []) == []
    assert rehearse.sanitize_patterns(ROOT / "tests" / "nbval_sanitize.cfg") is not None


@pytest.mark.build
def test_hosted_mode_of_the_weekly_job_runs_and_reports(published, tmp_path):
    """What the weekly job runs inside Colab's image, here with this
    environment's own kernel (where the install cell does nothing): one
    notebook passes, and a notebook whose output was tampered with is reported."""
    page = (
        "book/conventions" if "book/conventions" in published else next(iter(published))
    )
    folder = tmp_path / "published"
    (folder / "book").mkdir(parents=True)
    notebook = nbformat.read(published[page], as_version=4)
    nbformat.write(notebook, folder / f"{page}.ipynb")
    assert rehearse.hosted(folder, tmp_path / "results") == 0
    assert "ok" in (tmp_path / "results" / "summary.md").read_text()
    for cell in notebook.cells:
        streams = [
            o for o in cell.get("outputs", []) if o.get("output_type") == "stream"
        ]
        if streams:
            streams[0]["text"] = "not what the page prints\n"
            break
    nbformat.write(notebook, folder / f"{page}.ipynb")
    assert rehearse.hosted(folder, tmp_path / "results") == 1
    assert "**fails**" in (tmp_path / "results" / "summary.md").read_text()
