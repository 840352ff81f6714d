"""Every number in a page's prose is printed or set by that page's code.

The rules are those of ``tools/prose_numbers.py``; the first tests check them
on a small synthetic page and its executed notebook, the last one runs them
over every page of the built book.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "prose_numbers", ROOT / "tools" / "prose_numbers.py"
)
pn = importlib.util.module_from_spec(_spec)
sys.modules["prose_numbers"] = pn
_spec.loader.exec_module(pn)

PAGE = """\
---
kernelspec:
  name: python3
---

(page-label)=
# Section 12: a heading with 4096 in it

A network of width 300, trained with step size 0.05, reaches a loss of
0.390 after 1,347 steps, an error of $1.2 \\times 10^{-3}$ (printed `1.2e-03`),
accuracy 93.5 % and a ratio of 199× in the 1980s (Poole et al. 2016); see
{eq}`page-eq` and {cite}`smith1999` and [a page](https://example.org/77).
Its slope is −0.55. Layers $x_{12}$, $W_{33}^{17}$, $2^L$ and $d_0$ are
symbols, and 3 or 7 layers are structural. The course CS-GY 6953 is a name.

$$
f(x) = 1234 x + 0.777
$$ (page-eq)

```{code-cell} ipython3
width, lr = 300, 0.05
print(f"loss {0.78 / 2:.3f} after {1347:,} steps, error {1.2e-3:.1e}")
print(f"accuracy {0.935:.1%}, ratio {199.0:.0f}, slope {-0.55}")
```

```{prf:theorem} Title 555
:label: thm-888

Inside a theorem the prose is checked too: 0.390.
```
"""


def _notebook(page: str) -> dict:
    """The executed notebook of ``page``: its code cells and their output."""
    import contextlib
    import io
    import re

    cells = []
    for source in re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", page, re.DOTALL):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(source, {})  # the synthetic page's own code
        cells.append(
            {
                "cell_type": "code",
                "source": source,
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": out.getvalue()}
                ],
            }
        )
    return {"cells": cells}


def test_a_page_whose_numbers_are_printed_passes():
    assert pn.check_page(PAGE, _notebook(PAGE), "page.md") == []


@pytest.mark.parametrize(
    ("quoted", "edited", "number"),
    [
        ("a loss of\n0.390", "a loss of\n0.391", "0.391"),  # a result
        ("width 300", "width 301", "301"),  # a parameter
        ("after 1,347 steps", "after 1,348 steps", "1,348"),
        ("10^{-3}", "10^{-4}", "1.2e-4"),
        ("`1.2e-03`", "`1.3e-03`", "1.3e-03"),
        ("93.5 %", "93.6 %", "93.6%"),
        ("199×", "198×", "198"),
        ("is −0.55", "is −0.56", "-0.56"),
        ("too: 0.390", "too: 0.39", "0.39"),  # the same value, another rounding
    ],
)
def test_editing_a_quoted_number_fails(quoted, edited, number):
    notebook = _notebook(PAGE)  # the outputs of the unedited page
    assert quoted in PAGE
    edited_page = PAGE.replace(quoted, edited, 1)
    failures = pn.check_page(edited_page, notebook, "page.md")
    assert len(failures) == 1, failures
    (failure,) = failures
    assert failure.page == "page.md"
    assert edited.splitlines()[-1] in edited_page.splitlines()[failure.line - 1]
    assert pn.key(failure.number) == pn.key(number)
    assert str(failure).startswith(f"page.md:{failure.line}: {failure.number} ")


def test_the_checker_names_page_line_and_number():
    page = "Some text.\n\nThe answer is 42.5 here.\n"
    (failure,) = pn.check_page(page, {"cells": []}, "book/x.md")
    assert (failure.page, failure.line, failure.number) == ("book/x.md", 3, "42.5")
    assert str(failure).startswith("book/x.md:3: 42.5 ")


@pytest.mark.parametrize(
    "a, b",
    [
        ("1.2e-3", "0.0012"),
        ("1.2e-03", "1.2E-3"),
        ("1,347", "1347"),
        ("-0.55", "0.55"),
        ("5.1e+09", "5.1e9"),
    ],
)
def test_notations_of_one_number_agree(a, b):
    assert pn.key(a) == pn.key(b)


@pytest.mark.parametrize(
    "a, b", [("1.2e-3", "1.20e-3"), ("0.39", "0.390"), ("3", "3.0"), ("85%", "85")]
)
def test_other_roundings_differ(a, b):
    assert pn.key(a) != pn.key(b)


@pytest.mark.parametrize(
    "prose, number",
    [
        ("a gain of $1.2\\times10^{-3}$.", "1.2e-3"),
        ("a gain of 1.2 × 10⁻³.", "1.2e-3"),
        ("a gain of $1{,}347$.", "1347"),
        ("a step of $10^{-6}$.", "1e-6"),
        ("a slope of −0.55.", "0.55"),
        ("8.5x faster.", "8.5"),
    ],
)
def test_notations_in_prose(prose, number):
    ((_, found, _),) = pn.prose_numbers(prose)
    assert pn.key(found) == pn.key(number)


@pytest.mark.parametrize(
    "prose",
    [
        "# Heading 12.5",
        "(label-33)=",
        "$$ y = 44.4 x $$",
        "the 1990s, Poole et al. 2016",
        "see {eq}`eq-55` and {cite:t}`x2019` and [link](https://a.b/66)",
        "three or 7 layers, $J_{12} W^{33}$, $2^L$, `float64`, 2nd, 3d",
        "a factor of $\\tfrac12$ or $\\frac{1}{2}$",
        "the course CS-GY 6953, the licence CC BY 4.0, Python 3.11",
    ],
)
def test_what_is_not_prose_or_not_checked(prose):
    assert pn.prose_numbers(prose) == []


def test_code_and_display_math_are_skipped():
    page = "```python\nx = 12.5\n```\n\n$$\n77.7\n$$\n\n````{code-cell}\n99\n````\n"
    assert pn.prose_numbers(page) == []


def test_exceptions_have_reasons():
    for page, pattern, reason in pn.EXCEPTIONS:
        assert page and pattern and len(reason) > 10


@pytest.mark.build
def test_every_page_of_the_built_book():
    """Run after ``make book``: every page's prose numbers are on the page."""
    executed = ROOT / "_build" / "jupyter_execute"
    if not executed.exists():
        pytest.fail("no _build/jupyter_execute: run `make book` first")
    failures = pn.check_book(ROOT, executed)
    assert not failures, "\n".join(map(str, failures))
