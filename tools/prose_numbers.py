"""Every number quoted in a page's prose is printed or set by that page.

A page's *prose* is its running text, inline code and inline math. Its
*evidence* is the source of its code cells (the parameters) and the text its
cells print (the results: streams and ``text/plain`` outputs of the executed
notebook). Every number in the prose must equal a number of the evidence in the
same rounding: ``1.2e-3``, ``1.2 × 10⁻³``, ``$1.2\\times10^{-3}$`` and ``0.0012``
are one number (two significant digits at the 10⁻⁴ place), ``1.20e-3`` is
another; ``1,347``, ``1{,}347`` and ``1347`` are one number; a sign, a ``%`` and
a unicode minus are notation. Not prose: display equations, headings and
directive titles, labels and options, code cells and literal includes, the
targets of roles (``{eq}``, ``{ref}``, ``{cite}``, ...) and of links.

What the check does not ask for, and why (the one list of exceptions):

- **Integers from 0 to 10** are structural ("two hidden layers", "steps 3 and
  4", "$J_3 J_2 J_1$", "$2^L$"), counted or indexed, not measured.
- **Indices and exponents of symbols** in inline math (``d_0``, ``W^2``,
  ``O(L^3)``) are notation; powers of ten (``10^{-6}``) are numbers.
- **Years** (``1980s``, ``Poole et al. 2016``) are history.
- The entries of :data:`EXCEPTIONS`: names that contain a number (a licence, a
  course, a Python version), each with its reason.

To quote a number, print it in a cell and write the sentence after it: a
glue role would bind it too, but shows as raw markup in the notebooks readers
open in Colab or Jupyter.

Run over a built book (``make book`` first)::

    python tools/prose_numbers.py            # every page of _toc.yml
    python tools/prose_numbers.py autodiff   # some pages

It prints ``page:line: number`` for every number that fails, and exits 1 if
any does.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXECUTED = ROOT / "_build" / "jupyter_execute"

#: Names that contain a number: (page or "*", regular expression, reason). A
#: number inside a match of the expression on a prose line is not checked.
EXCEPTIONS: list[tuple[str, str, str]] = [
    ("*", r"CS-GY 6953", "the NYU course's name, not a quantity"),
    ("*", r"CC BY 4\.0", "the licence's name"),
    ("*", r"Python 3\.\d+", "the Python version the book needs"),
]

#: The largest integer that counts as structural (see the module docstring).
SMALL = 10

# Directives whose content is code, a bibliography or display math: skipped.
# All other directives (theorems, proofs, exercises, notes) hold prose.
_CODE_DIRECTIVES = {
    "code-cell",
    "code",
    "code-block",
    "sourcecode",
    "literalinclude",
    "bibliography",
    "math",
    "raw",
    "eval-rst",
    "glue:figure",
    "glue:math",
}

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(\{([^}]*)\})?\s*(\S*)")
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUPERSCRIPT_RUN = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+")
_YEAR = re.compile(
    r"\b(1[89]\d\d|20\d\d)(?=s\b)"  # the 1980s
    r"|(?<=et al\. )(1[89]\d\d|20\d\d)\b"  # Poole et al. 2016
    r"|(?<=et al\., )(1[89]\d\d|20\d\d)\b"
)
# A number of the prose: digits (with thousands separators), a fraction, an
# exponent. Not part of a word (``float64``, ``2nd``, ``x1``), except a
# trailing ``x`` (``8.5x``).
_PROSE_NUMBER = re.compile(
    r"(?<![\w.^])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?([eE][-+]?\d+)?"
    r"(?=x\b|(?![\w^]|\.\d))"
)
# A number of the evidence: any run of digits, wherever it stands.
_ANY_NUMBER = re.compile(r"(\d+)(\.\d+)?([eE][-+]?\d+)?")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?![\d])")


@dataclass(frozen=True)
class Failure:
    page: str
    line: int
    number: str
    text: str

    def __str__(self) -> str:
        return (
            f"{self.page}:{self.line}: {self.number} is not printed or set by "
            f"the page's code  | {self.text.strip()}"
        )


def key(text: str) -> tuple | None:
    """The number ``text`` as (significant digits, exponent of the last digit).

    ``key("1.2e-3") == key("0.0012") == ((1, 2), -4)``; ``key("1.20e-3")`` is
    ``((1, 2, 0), -5)``: the same value in another rounding. Signs and
    thousands separators are dropped; a percentage ``"85%"`` is
    ``("%", key("85"))``, and matches only a printed percentage (or a fraction
    in the code or outputs: 0.25 is 25%).
    """
    if text.endswith("%"):
        inner = key(text[:-1])
        return None if inner is None else ("%", inner)
    text = text.replace(",", "").lstrip("+-")
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    _, digits, exponent = number.as_tuple()
    # Leading zeros are not significant ("0.0012" has the digits 1, 2).
    digits = tuple(digits)
    while len(digits) > 1 and digits[0] == 0:
        digits = digits[1:]
    return digits, exponent


def _strip_roles_and_links(line: str) -> str:
    # {eq}`label`, {cite:t}`key`, {doc}`page`, {prf:ref}`label`: references.
    line = re.sub(r"\{[\w:-]+\}`[^`]*`", " ", line)
    # [text](target) keeps the text; <https://...> goes.
    line = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line)
    line = re.sub(r"<https?://[^>]*>", " ", line)
    return re.sub(r"https?://\S+", " ", line)


def _math_to_text(math: str) -> str:
    """Inline LaTeX as plain numbers: powers of ten become exponents; the
    indices and exponents of symbols go."""
    math = math.replace("{,}", ",").replace("−", "-")
    math = re.sub(r"(?<=\d)\\[,;!]\s*(?=\d{3}\b)", "", math)  # 1\,347
    ten = r"10\^\{?\s*([-+−]?\d+)\s*\}?"
    math = re.sub(
        r"(\d+(?:\.\d+)?)\s*(?:\\times|\\cdot|×)\s*" + ten,
        lambda m: f" {m[1]}e{m[2]} ",
        math,
    )
    math = re.sub(r"(?<![\d.])" + ten, lambda m: f" 1e{m[1]} ", math)
    math = re.sub(r"\\[dt]?frac\s*(\d)\s*(\d)", r" \1/\2 ", math)  # \tfrac12
    # Indices and exponents of symbols: x_0, x_{l-1}, W^2, 2^{L}.
    math = re.sub(r"[_^]\{[^{}]*\}", " ", math)
    math = re.sub(r"[_^]\\?\w", " ", math)
    return re.sub(r"\\[a-zA-Z]+", " ", math)  # \times, \sqrt, \text, ...


def _text_to_plain(text: str) -> str:
    """Prose (outside math) with its notations of numbers made plain."""
    text = text.replace("−", "-").replace("\u2009", " ").replace("\u202f", " ")
    text = re.sub(r"(?<=\d)[\u00a0 ](?=\d{3}\b)", "", text)  # 1 347
    # 1.2 × 10⁻³ and 10⁻³ and 1.2 x 10^-3
    text = _SUPERSCRIPT_RUN.sub(lambda m: "^" + m[0].translate(_SUPERSCRIPTS), text)
    ten = r"10\^\(?([-+]?\d+)\)?"
    text = re.sub(
        r"(\d+(?:\.\d+)?)\s*[×x*·]\s*" + ten, lambda m: f"{m[1]}e{m[2]}", text
    )
    text = re.sub(r"(?<![\d.])" + ten, lambda m: f"1e{m[1]}", text)
    return text


def _prose_segments(line: str) -> list[str]:
    """Split a prose line into its text, inline code and inline math, made
    plain."""
    line = _strip_roles_and_links(line)
    out: list[str] = []
    # Inline code first (it may contain $), then inline math.
    for k, part in enumerate(re.split(r"(`[^`]*`)", line)):
        if k % 2:
            out.append(part.strip("`"))
            continue
        for j, piece in enumerate(re.split(r"(?<!\\)\$([^$]+)\$", part)):
            out.append(_math_to_text(piece) if j % 2 else _text_to_plain(piece))
    return out


def _exempt_spans(line: str, page: str) -> list[tuple[int, int]]:
    spans = [m.span() for m in _YEAR.finditer(line)]
    for where, pattern, _reason in EXCEPTIONS:
        if where in ("*", page):
            spans += [m.span() for m in re.finditer(pattern, line)]
    return spans


def prose_numbers(markdown: str, page: str = "") -> list[tuple[int, str, str]]:
    """``(line number, number, line)`` for every number of a page's prose that
    the rules ask to check (small integers, years and exceptions left out)."""
    found = []
    lines = markdown.splitlines()
    i = 0
    fence: str | None = None  # the fence that closes the code being skipped
    in_display = False
    if lines and lines[0].strip() == "---":  # front matter
        i = 1
        while i < len(lines) and lines[i].strip() != "---":
            i += 1
        i += 1
    in_comment = False
    while i < len(lines):
        line = lines[i]
        number = i + 1
        i += 1
        stripped = line.strip()
        if fence is not None:
            if stripped.startswith(fence) and set(stripped) <= set(fence[0]):
                fence = None
            continue
        if in_comment:
            in_comment = "-->" not in line
            continue
        if stripped.startswith("<!--"):
            in_comment = "-->" not in line
            continue
        match = _FENCE.match(line)
        if match:
            directive = (match[3] or "").strip()
            language = match[4]
            if (match[2] is None and language) or directive in _CODE_DIRECTIVES:
                fence = match[1]
            continue  # the fence line: a directive name and title, or a close
        if in_display:
            if "$$" in stripped:
                in_display = False
            continue
        if stripped.startswith("$$"):
            in_display = stripped.count("$$") == 1
            continue
        if (
            stripped.startswith("#")  # headings
            or re.fullmatch(r"\(\S+\)=", stripped)  # labels
            or re.match(r":[\w-]+:", stripped)  # directive options
        ):
            continue
        exempt = _exempt_spans(line, page)
        masked = list(line)
        for start, end in exempt:
            masked[start:end] = " " * (end - start)
        for segment in _prose_segments("".join(masked)):
            for m in _PROSE_NUMBER.finditer(segment):
                text = m[0]
                k = key(text)
                if k is None:
                    continue
                if "." not in text and "e" not in text.lower():
                    if int(text.replace(",", "")) <= SMALL:
                        continue
                if re.match(r"\s*(%|per ?cent)", segment[m.end() :]):
                    text += "%"
                found.append((number, text, line))
    return found


def evidence(markdown: str, notebook: dict | None) -> set:
    """The keys of every number in the page's code cells and printed text."""
    texts: list[str] = []
    for cell in (notebook or {}).get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        texts.append(_join(cell.get("source", "")))
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(_join(output.get("text", "")))
            elif "data" in output:
                texts.append(_join(output["data"].get("text/plain", "")))
    if notebook is None:  # no executed notebook: the code cells of the source
        texts += re.findall(
            r"```\{code-cell\}[^\n]*\n(.*?)```", markdown, flags=re.DOTALL
        )
    keys = set()
    for text in texts:
        text = text.replace("−", "-")
        for m in _ANY_NUMBER.finditer(text):
            k = key(m[0])
            keys.add(k)
            if k is not None and text[m.end() : m.end() + 1] == "%":
                keys.add(("%", k))
            elif k is not None:  # the fraction 0.25 is the percentage 25
                keys.add(("%", (k[0], k[1] + 2)))
        for m in _THOUSANDS.finditer(text):
            keys.add(key(m[0]))
    keys.discard(None)
    return keys


def _join(source) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def check_page(
    markdown: str, notebook: dict | None, page: str = "page"
) -> list[Failure]:
    """The numbers of the page's prose that its code neither sets nor prints."""
    known = evidence(markdown, notebook)
    return [
        Failure(page, line, number, text)
        for line, number, text in prose_numbers(markdown, page)
        if key(number) not in known
    ]


def book_pages(root: Path = ROOT) -> list[str]:
    """The pages of ``_toc.yml`` (``book/name``), in order."""
    toc = (root / "_toc.yml").read_text(encoding="utf-8")
    return re.findall(r"(?:root|file):\s*(\S+)", toc)


def _executed(path: Path, root: Path) -> dict:
    """The executed notebook at ``path``, with its outputs.

    A page whose prose changed but whose code did not is taken from MyST-NB's
    execution cache, and its notebook in ``jupyter_execute`` is then written
    without outputs: those are read back from the cache.
    """
    notebook = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in notebook.get("cells", []) if c.get("cell_type") == "code"]
    if not code or any(c.get("outputs") for c in code):
        return notebook
    import nbformat
    from jupyter_cache import get_cache

    cache = root / "_build" / ".jupyter_cache"
    try:
        _, merged = get_cache(cache).merge_match_into_notebook(
            nbformat.reads(json.dumps(notebook), as_version=4)
        )
    except KeyError as error:
        raise FileNotFoundError(
            f"{path} has no outputs and {cache} has none for it: rebuild the book"
        ) from error
    return json.loads(nbformat.writes(merged))


def check_book(
    root: Path = ROOT, executed: Path | None = None, pages=None
) -> list[Failure]:
    """Check the pages (all of ``_toc.yml`` by default) of a built book."""
    executed = executed or root / "_build" / "jupyter_execute"
    failures = []
    for page in pages or book_pages(root):
        if "/" not in page:
            page = f"book/{page}"
        source = root / f"{page}.md"
        markdown = source.read_text(encoding="utf-8")
        nb_path = executed / f"{page}.ipynb"
        if "code-cell" in markdown and not nb_path.exists():
            raise FileNotFoundError(f"{nb_path}: build the book first (make book)")
        notebook = _executed(nb_path, root) if nb_path.exists() else None
        failures += check_page(markdown, notebook, f"{page}.md")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", help="page names (default: all)")
    args = parser.parse_args(argv)
    failures = check_book(pages=args.pages or None)
    for failure in failures:
        print(failure)
    print(f"{len(failures)} prose number(s) not printed by their page")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
