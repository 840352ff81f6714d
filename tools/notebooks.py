"""The book's published places, and the notebooks that Colab opens.

Everything here derives from ``repository.url`` in ``_config.yml``: the GitHub
Pages address, the Binder and Colab links, and the install cell.

Colab opens only ``.ipynb`` files from GitHub, so the publishing workflow turns
every executed page of a build (``_build/jupyter_execute/<page>.ipynb``, with its
outputs) into a notebook whose first cell installs ``whydeep`` from the
repository at the commit the book was built from, and pushes those notebooks to
the branch named by ``whydeep_notebooks_branch``, at ``<page>.ipynb``: the path
the Colab buttons link to (see ``_ext/whydeep_launch.py``).

Binder opens the same chapters, rendered the same way but without outputs, which
``binder/postBuild`` writes from the MyST sources into ``notebooks/``:

    python tools/notebooks.py --out _build/notebooks [--ref COMMIT]
    python tools/notebooks.py --from-sources --out notebooks
    python tools/notebooks.py --print-branch
"""

from __future__ import annotations

import argparse
import ast
import base64
import copy
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "whydeep"
INSTALL_CELL_ID = "whydeep-install"


def load_config(root: Path = ROOT) -> dict:
    """The book's ``_config.yml``."""
    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))


def repository(config: dict) -> tuple[str, str, str]:
    """``(url, owner, name)`` of the GitHub repository the book names."""
    url = config["repository"]["url"].rstrip("/")
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)", url)
    if match is None:
        raise ValueError(
            f"repository.url={url!r}: expected https://github.com/OWNER/NAME"
        )
    return url, match[1], match[2]


def pages_url(config: dict) -> str:
    """Where GitHub Pages serves the book (a project site)."""
    _, owner, name = repository(config)
    return f"https://{owner.lower()}.github.io/{name}/"


def notebooks_branch(config: dict) -> str:
    return config["sphinx"]["config"]["whydeep_notebooks_branch"]


def _path_in_repo(config: dict, page: str, suffix: str) -> str:
    prefix = config["repository"].get("path_to_book", "").strip("/")
    return f"{prefix}/{page}{suffix}" if prefix else f"{page}{suffix}"


def colab_url(config: dict, page: str) -> str:
    """The Colab link of ``page`` (a docname such as ``book/sawtooth``)."""
    _, owner, name = repository(config)
    base = config["launch_buttons"]["colab_url"].rstrip("/")
    path = _path_in_repo(config, page, ".ipynb")
    return f"{base}/github/{owner}/{name}/blob/{notebooks_branch(config)}/{path}"


#: Where binder/postBuild writes the chapters as rendered notebooks (without
#: outputs), relative to the repository: ``<folder>/<page>.ipynb``
#: (``whydeep_binder_folder`` in _config.yml; tests/test_publishing.py checks).
BINDER_FOLDER = "notebooks"


def binder_path(config: dict, page: str) -> str:
    """Path, in a Binder session's checkout, of ``page``'s rendered notebook."""
    folder = config["sphinx"]["config"].get("whydeep_binder_folder", BINDER_FOLDER)
    return f"{folder}/{_path_in_repo(config, page, '.ipynb')}"


def binder_url(config: dict, page: str) -> str:
    """The Binder link of ``page``: its rendered notebook, made by postBuild."""
    _, owner, name = repository(config)
    base = config["launch_buttons"]["binderhub_url"].rstrip("/")
    branch = config["repository"]["branch"]
    return f"{base}/v2/gh/{owner}/{name}/{branch}?urlpath=lab/tree/{binder_path(config, page)}"


def install_requirement(config: dict, ref: str) -> str:
    """The pip requirement for the package at commit (or branch) ``ref``."""
    if not re.fullmatch(r"[0-9A-Za-z._/-]+", ref):
        raise ValueError(f"ref={ref!r} is not a commit or branch name")
    url, _, _ = repository(config)
    return f"{PACKAGE} @ git+{url}@{ref}"


def install_cell_source(config: dict, ref: str, requirement: str | None = None) -> str:
    """First cell of a published notebook: a no-op where the package imports."""
    requirement = requirement or install_requirement(config, ref)
    return f"""\
# Colab and other fresh kernels: install the book's package, at the commit
# this notebook was built from. Where it is installed already, do nothing.
import importlib
import importlib.util
import subprocess
import sys

REQUIREMENT = "{requirement}"
if importlib.util.find_spec("{PACKAGE}") is None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", REQUIREMENT], check=True
    )
    importlib.invalidate_caches()"""


# --------------------------------------------------------------------------
# The chapters for a notebook reader
# --------------------------------------------------------------------------
#
# Jupyter and Colab render plain Markdown and MathJax, not MyST: a `{cite}`
# role, a fenced `{prf:theorem}` or an equation label `$$ ... $$ (label)` would
# show as literal text, and every exercise's solution would sit in plain view
# under it. `render_notebook` turns a chapter's cells into what a notebook reader
# should see: theorems, proofs and exercises as headed blocks, solutions gathered
# under a folded "Solutions" heading at the end, citations as author-year links to
# the chapter's reference list on the published page, equations numbered with
# \tag as in the book, and cross-references as links to the published page.

PRF_KINDS = {
    "prf:theorem": "Theorem",
    "prf:lemma": "Lemma",
    "prf:proposition": "Proposition",
    "prf:corollary": "Corollary",
    "prf:definition": "Definition",
    "prf:remark": "Remark",
    "prf:example": "Example",
    "prf:conjecture": "Conjecture",
    "prf:axiom": "Axiom",
    "prf:criterion": "Criterion",
    "prf:observation": "Observation",
    "prf:property": "Property",
    "prf:assumption": "Assumption",
    "prf:notation": "Notation",
    "prf:algorithm": "Algorithm",
}
ADMONITIONS = {
    "note": "Note",
    "tip": "Tip",
    "hint": "Hint",
    "important": "Important",
    "warning": "Warning",
    "caution": "Caution",
    "attention": "Attention",
    "danger": "Danger",
    "error": "Error",
    "seealso": "See also",
}
SOLUTIONS_HEADING = "## Solutions"
SOLUTION_CELL_TAG = "solution"

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
_DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[\w:.-]+)\}\s*(?P<argument>.*)$")
_OPTION = re.compile(r"^\s*:(?P<key>[\w-]+):\s*(?P<value>.*)$")
_ROLE = re.compile(r"\{(?P<name>[a-z][\w:-]*)\}(?P<ticks>`+)(?P<body>.+?)(?P=ticks)")
_TARGET = re.compile(r"^\((?P<label>[\w.:-]+)\)=\s*$")
_HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.+?)\s*#*\s*$")
_DISPLAY_MATH = re.compile(
    r"(?P<open>^[ \t]*\$\$)(?P<body>.*?)\$\$[ \t]*\((?P<label>[\w.:-]+)\)[ \t]*$",
    re.S | re.M,
)
_EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return (
        len(stripped) >= len(fence)
        and set(stripped) == {fence[0]}
        and stripped.startswith(fence)
    )


@dataclass
class Block:
    """A piece of a Markdown cell: plain text, a code fence, or a directive."""

    kind: str  # "text", "code" or "directive"
    text: str = ""  # text; the whole fence for code
    name: str = ""  # directive name
    argument: str = ""
    options: dict[str, str] = field(default_factory=dict)
    body: str = ""


def split_blocks(text: str) -> list[Block]:
    """``text`` cut into plain text, code fences and (outermost) directives.

    A fence closes at the first line made of at least as many of its characters,
    so a directive written with four backticks may hold three-backtick ones.
    An unclosed fence runs to the end, as in CommonMark.
    """
    lines = text.split("\n")
    blocks: list[Block] = []
    plain: list[str] = []
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if match is None:
            plain.append(lines[i])
            i += 1
            continue
        fence, info = match["fence"], match["info"].strip()
        if fence[0] == ":" and not info.startswith("{"):
            plain.append(lines[i])
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not _closes(lines[end], fence):
            end += 1
        inner = lines[i + 1 : end]
        if plain:
            blocks.append(Block("text", "\n".join(plain)))
            plain = []
        directive = _DIRECTIVE_INFO.match(info)
        if directive is None:
            blocks.append(Block("code", "\n".join(lines[i : end + 1])))
        else:
            options = {}
            while inner and (option := _OPTION.match(inner[0])):
                options[option["key"]] = option["value"].strip()
                inner = inner[1:]
            blocks.append(
                Block(
                    "directive",
                    name=directive["name"],
                    argument=directive["argument"].strip(),
                    options=options,
                    body="\n".join(inner).strip("\n"),
                )
            )
        i = end + 1
    if plain:
        blocks.append(Block("text", "\n".join(plain)))
    return blocks


_ACCENTS = {
    '"': "\u0308",
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
}
_LETTERS = {
    "i": "ı",
    "j": "ȷ",
    "o": "ø",
    "O": "Ø",
    "l": "ł",
    "L": "Ł",
    "ss": "ß",
    "aa": "å",
    "AA": "Å",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
}


def latex_text(value: str) -> str:
    """BibTeX text with LaTeX accents (``G\\"une\\c{s}``) as Unicode (``Güneş``)."""
    import unicodedata

    value = re.sub(
        r"\\(ss|aa|AA|ae|AE|oe|OE|[ijoOlL])(?![A-Za-z])\s*",
        lambda m: _LETTERS[m[1]],
        value,
    )
    value = re.sub(
        r"\\([\"'`^~=.]|[uvHck](?=[\s{]))\s*\{?\s*([A-Za-zıȷ])\}?",
        lambda m: m[2] + _ACCENTS[m[1]],
        value,
    )
    value = value.replace("--", "–").replace("{", "").replace("}", "")
    return unicodedata.normalize("NFC", re.sub(r"\s+", " ", value))


def _field(entry_text: str) -> dict[str, str]:
    """Fields of one BibTeX entry body (``key = {value}`` or ``key = "value"``)."""
    fields, i = {}, 0
    pattern = re.compile(r"\s*,?\s*([A-Za-z][\w-]*)\s*=\s*")
    while (match := pattern.match(entry_text, i)) is not None:
        name, i = match[1].lower(), match.end()
        if i >= len(entry_text):
            break
        if entry_text[i] in '{"':
            closing = "}" if entry_text[i] == "{" else '"'
            depth, j = 0, i
            while j < len(entry_text):
                char = entry_text[j]
                if char == "{":
                    depth += 1
                elif char == "}":
                    depth -= 1
                if (closing == "}" and depth == 0) or (
                    closing == '"' and char == '"' and j > i and depth == 0
                ):
                    break
                j += 1
            value, i = entry_text[i + 1 : j], j + 1
        else:
            end = re.compile(r"[,}\s]").search(entry_text, i)
            j = end.start() if end else len(entry_text)
            value, i = entry_text[i:j], j
        fields[name] = latex_text(value)
    return fields


def read_bibliography(path: Path) -> dict[str, dict[str, str]]:
    """The entries of a BibTeX file: ``key -> fields`` (lower-case names)."""
    text = path.read_text(encoding="utf-8")
    entries = {}
    for match in re.finditer(r"@(\w+)\s*\{\s*([^,\s]+)\s*,", text):
        depth, j = 1, match.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        fields = _field(text[match.end() : j - 1])
        fields["type"] = match[1].lower()
        entries[match[2]] = fields
    return entries


def _surnames(fields: dict[str, str]) -> list[str]:
    names = []
    for person in re.split(r"\s+and\s+", fields.get("author", "")):
        person = person.strip()
        if not person:
            continue
        names.append(
            person.split(",")[0].strip() if "," in person else person.split()[-1]
        )
    return names or [fields.get("title", "?")]


def author_short(fields: dict[str, str]) -> str:
    """``Saxe et al.``, ``Glorot and Bengio`` or ``Cybenko``."""
    names = _surnames(fields)
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return f"{names[0]} et al."


def reference_text(fields: dict[str, str]) -> str:
    """One entry of a chapter's reference list, in Markdown."""
    names = []
    for person in re.split(r"\s+and\s+", fields.get("author", "")):
        if "," in person:
            last, first = (part.strip() for part in person.split(",", 1))
            names.append(f"{first} {last}".strip())
        elif person.strip():
            names.append(person.strip())
    venue = (
        fields.get("journal") or fields.get("booktitle") or fields.get("publisher", "")
    )
    if fields.get("eprint") and not venue:
        venue = f"arXiv:{fields['eprint']}"
    text = (
        f"{', '.join(names)} ({fields.get('year', 'n.d.')}). {fields.get('title', '')}."
    )
    if venue:
        text += f" *{venue}*."
    if fields.get("doi"):
        text += f" <https://doi.org/{fields['doi']}>"
    elif fields.get("url"):
        text += f" <{fields['url']}>"
    elif fields.get("eprint"):
        text += f" <https://arxiv.org/abs/{fields['eprint']}>"
    return text


@dataclass
class Target:
    """Something a chapter can point at: its page, anchor and readable name."""

    page: str
    anchor: str
    name: str  # "Theorem 3.1", "(3.2)", "Exercise 3.2", a section's title


@dataclass
class BookIndex:
    """What rendering needs to know about the whole book."""

    base_url: str  # the published book, ending in "/"
    titles: dict[str, str]  # docname -> page title
    chapter_numbers: dict[str, str]  # docname -> "3" for numbered chapters
    targets: dict[str, Target]
    bibliography: dict[str, dict[str, str]]

    def page_url(self, page: str, anchor: str = "") -> str:
        return f"{self.base_url}{page}.html" + (f"#{anchor}" if anchor else "")


def toc_pages(root: Path = ROOT) -> tuple[list[str], dict[str, str]]:
    """The book's docnames in reading order, and the numbered chapters' numbers."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pages, numbers = [toc["root"]], {}
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        count = 0
        for chapter in part.get("chapters", []):
            pages.append(chapter["file"])
            if part.get("numbered"):
                count += 1
                numbers[chapter["file"]] = str(count)
    return pages, numbers


def _slug(title: str) -> str:
    """The anchor Sphinx gives a section titled ``title`` (ASCII titles)."""
    text = re.sub(r"[`*_$\\{}]", "", title).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def _equation_anchor(label: str) -> str:
    """The id Sphinx gives a labelled equation (docutils' ``make_id``)."""
    return "equation-" + re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _number(chapter: str, count: int) -> str:
    return f"{chapter}.{count}" if chapter else str(count)


def index_page(page: str, text: str, chapter: str, targets: dict) -> str:
    """Record the labels of one page in ``targets``; return the page's title."""
    title = page.rsplit("/", 1)[-1]
    counters: dict[str, int] = {}
    pending_target = None
    equation = 0

    def visit(blocks: list[Block]) -> None:
        nonlocal title, pending_target, equation
        for block in blocks:
            if block.kind == "text":
                for line in block.text.split("\n"):
                    if target := _TARGET.match(line.strip()):
                        pending_target = target["label"]
                    elif heading := _HEADING.match(line):
                        if (
                            len(heading["hashes"]) == 1
                            and title == page.rsplit("/", 1)[-1]
                        ):
                            title = heading["title"]
                        if pending_target:
                            targets[pending_target] = Target(
                                page,
                                _equation_anchor(pending_target).removeprefix(
                                    "equation-"
                                ),
                                heading["title"],
                            )
                            pending_target = None
                for match in _DISPLAY_MATH.finditer(block.text):
                    equation += 1
                    label = match["label"]
                    targets[label] = Target(
                        page, _equation_anchor(label), f"({_number(chapter, equation)})"
                    )
            elif block.kind == "directive":
                kind = PRF_KINDS.get(block.name) or (
                    "Exercise" if block.name == "exercise" else None
                )
                if block.name == "math" and "label" in block.options:
                    equation += 1
                    label = block.options["label"]
                    targets[label] = Target(
                        page, _equation_anchor(label), f"({_number(chapter, equation)})"
                    )
                if kind is not None and "nonumber" not in block.options:
                    counters[kind] = counters.get(kind, 0) + 1
                    if "label" in block.options:
                        label = block.options["label"]
                        targets[label] = Target(
                            page, label, f"{kind} {_number(chapter, counters[kind])}"
                        )
                visit(split_blocks(block.body))

    visit(split_blocks(text))
    return title


def book_index(root: Path = ROOT, config: dict | None = None) -> BookIndex:
    """Labels, titles and references of every page of the table of contents."""
    config = config or load_config(root)
    pages, numbers = toc_pages(root)
    targets: dict[str, Target] = {}
    titles = {}
    for page in pages:
        source = root / f"{page}.md"
        if source.is_file():
            text = source.read_text(encoding="utf-8")
            titles[page] = index_page(page, text, numbers.get(page, ""), targets)
    bibliography = {}
    for bibfile in config.get("bibtex_bibfiles", []):
        bibliography.update(read_bibliography(root / bibfile))
    return BookIndex(pages_url(config), titles, numbers, targets, bibliography)


class Renderer:
    """Renders the MyST of one page as notebook Markdown."""

    def __init__(
        self, page: str, index: BookIndex, root: Path = ROOT, solved=()
    ) -> None:
        self.page, self.index, self.root = page, index, root
        self.solved = set(solved)  # labels of the exercises with a solution
        self.cited: list[str] = []
        self.equation = 0
        self.chapter = index.chapter_numbers.get(page, "")

    # -- roles -------------------------------------------------------------

    def _cite(self, name: str, body: str) -> str:
        keys = [key.strip() for key in body.split(",") if key.strip()]
        url = self.index.page_url(self.page, "references")
        parts = []
        for key in keys:
            fields = self.index.bibliography.get(key)
            if fields is None:
                raise ValueError(
                    f"{self.page}: citation {key!r} is not in the bibliography"
                )
            if key not in self.cited:
                self.cited.append(key)
            who, year = author_short(fields), fields.get("year", "n.d.")
            parts.append(
                f"[{who} ({year})]({url})"
                if name == "cite:t"
                else f"[{who}, {year}]({url})"
            )
        return "; ".join(parts) if name == "cite:t" else f"({'; '.join(parts)})"

    def _reference(self, name: str, body: str) -> str:
        explicit = _EXPLICIT.match(body)
        text, label = (
            (explicit["text"], explicit["target"]) if explicit else (None, body)
        )
        label = label.strip()
        if name == "doc":
            page = (
                label.lstrip("/")
                if label.startswith("/")
                else f"{self.page.rsplit('/', 1)[0]}/{label}"
                if "/" in self.page
                else label
            )
            return f"[{text or self.index.titles.get(page, label)}]({self.index.page_url(page)})"
        target = self.index.targets.get(label)
        if target is None:
            raise ValueError(f"{self.page}: {{{name}}} to an unknown label {label!r}")
        shown = text or target.name
        if name == "eq":
            shown = shown if text else target.name
        return f"[{shown}]({self.index.page_url(target.page, target.anchor)})"

    def _role(self, match: re.Match) -> str:
        name, body = match["name"], match["body"]
        if name.startswith("cite"):
            return self._cite(name, body)
        if name in ("eq", "ref", "numref", "prf:ref", "doc", "any"):
            return self._reference(name, body)
        if name == "math":
            return f"${body}$"
        if name in ("code", "literal", "file", "samp", "kbd", "command"):
            return f"`{body}`"
        explicit = _EXPLICIT.match(body)
        return explicit["text"] if explicit else body  # term, abbr, sub, ...

    def roles(self, text: str) -> str:
        return _ROLE.sub(self._role, text)

    # -- text ----------------------------------------------------------------

    def _tag(self, match: re.Match) -> str:
        target = self.index.targets.get(match["label"])
        number = target.name.strip("()") if target else ""
        return f"{match['open']}{match['body'].rstrip()} \\tag{{{number}}}\n$$"

    def text(self, text: str) -> str:
        text = _DISPLAY_MATH.sub(self._tag, text)
        lines = [line for line in text.split("\n") if not _TARGET.match(line.strip())]
        return self.roles("\n".join(lines))

    def markdown(self, text: str) -> str:
        """``text`` (MyST) as plain Markdown with MathJax."""
        out = []
        for block in split_blocks(text):
            if block.kind == "text":
                out.append(self.text(block.text))
            elif block.kind == "code":
                out.append(block.text)
            else:
                out.append(self.directive(block))
        return re.sub(r"\n{3,}", "\n\n", "\n".join(out))

    # -- directives -----------------------------------------------------------

    def _title(self, block: Block) -> str:
        target = self.index.targets.get(block.options.get("label", ""))
        return target.name if target else ""

    def _quoted(self, heading: str, body: str) -> str:
        lines = [heading, "", *self.markdown(body).strip("\n").split("\n")]
        return "\n".join(f"> {line}".rstrip() for line in lines)

    def directive(self, block: Block) -> str:
        name, argument = block.name, self.roles(block.argument)
        if name in PRF_KINDS or name == "exercise":
            kind = PRF_KINDS.get(name, "Exercise")
            numbered = self._title(block) or kind
            heading = f"**{numbered}** ({argument})" if argument else f"**{numbered}**"
            text = self._quoted(heading, block.body)
            if block.options.get("label") in self.solved:
                text += "\n>\n> *Its solution is at the end of the notebook, under Solutions.*"
            return "\n" + text + "\n"
        if name == "prf:proof":
            body = self.markdown(block.body).strip("\n")
            return f"\n*Proof.*\n\n{body}\n\n$\\blacksquare$\n"
        if name == "math":
            label = block.options.get("label")
            target = self.index.targets.get(label) if label else None
            tag = f" \\tag{{{target.name.strip('()')}}}" if target else ""
            return f"$$\n{block.body.strip()}{tag}\n$$"
        if name == "bibliography":
            return self.bibliography()
        if name == "literalinclude":
            return self.literalinclude(block)
        if name in ("code", "code-block", "sourcecode"):
            return f"```{argument}\n{block.body}\n```"
        if name in ("figure", "image"):
            alt = block.options.get("alt", "")
            url = argument
            if not re.match(r"https?://", url):
                folder = self.page.rsplit("/", 1)[0] + "/" if "/" in self.page else ""
                url = f"{self.index.base_url}{folder}{url}"
            caption = self.markdown(block.body).strip() if name == "figure" else ""
            return f"![{alt}]({url})" + (f"\n\n*{caption}*" if caption else "")
        if name in ADMONITIONS or name in (
            "admonition",
            "dropdown",
            "margin",
            "sidebar",
            "epigraph",
            "topic",
        ):
            heading = (
                argument
                if name in ("admonition", "dropdown", "topic", "sidebar")
                else ADMONITIONS.get(name, "")
            )
            return (
                "\n"
                + self._quoted(f"**{heading}**" if heading else "", block.body)
                + "\n"
            )
        if name in ("solution-start", "solution-end"):
            raise ValueError(
                f"{self.page}: a {name} block outside the solutions' layout"
            )
        # Any other directive: its content, headed by its name and argument.
        heading = f"**{name.split(':')[-1].replace('-', ' ').capitalize()}**"
        if argument:
            heading += f" ({argument})"
        return "\n" + self._quoted(heading, block.body) + "\n"

    def bibliography(self) -> str:
        if not self.cited:
            return "This page cites no work."
        url = self.index.page_url(self.page, "references")
        entries = "\n".join(
            f"- {reference_text(self.index.bibliography[key])}"
            for key in sorted(
                self.cited, key=lambda k: (author_short(self.index.bibliography[k]), k)
            )
        )
        return (
            f"The works cited in this notebook (the book's list: [References]({url})):"
            f"\n\n{entries}"
        )

    def literalinclude(self, block: Block) -> str:
        folder = (self.root / self.page).parent
        path = (folder / block.argument).resolve()
        source = path.read_text(encoding="utf-8")
        if "pyobject" in block.options:
            wanted = block.options["pyobject"].split(".")
            nodes = ast.parse(source).body
            found = None
            for part in wanted:
                found = next(
                    (n for n in nodes if getattr(n, "name", None) == part), None
                )
                if found is None:
                    raise ValueError(
                        f"{self.page}: no {block.options['pyobject']} in {path.name}"
                    )
                nodes = getattr(found, "body", [])
            lines = source.split("\n")
            start = min(
                [
                    found.lineno,
                    *(d.lineno for d in getattr(found, "decorator_list", [])),
                ]
            )
            source = "\n".join(lines[start - 1 : found.end_lineno])
        language = block.options.get("language", "")
        return f"```{language}\n{source.rstrip()}\n```"


def _solution_fence(line: str) -> str | None:
    match = _OPEN.match(line)
    if match and (info := _DIRECTIVE_INFO.match(match["info"].strip())):
        if info["name"] in ("solution-start", "solution-end"):
            return info["name"]
    return None


def _split_solutions(cells: list) -> list[tuple[object, str | None]]:
    """Cells cut at solution fences: ``(cell, label of the solution or None)``.

    ``{solution-start} label`` ... ``{solution-end}`` may span several cells
    (a solution can hold code); the fences themselves (and their options) are
    dropped.
    """
    pieces: list[tuple[object, str | None]] = []
    current: str | None = None
    for cell in cells:
        if cell.cell_type != "markdown":
            pieces.append((cell, current))
            continue
        lines = cell.source.split("\n")
        start, i = 0, 0
        while i <= len(lines):
            kind = _solution_fence(lines[i]) if i < len(lines) else "end of cell"
            if kind is None:
                i += 1
                continue
            text = "\n".join(lines[start:i]).strip("\n")
            if text.strip():
                piece = copy.deepcopy(cell)
                piece.source = text
                pieces.append((piece, current))
            if i == len(lines):
                break
            opening = _OPEN.match(lines[i])
            fence = opening["fence"]
            argument = _DIRECTIVE_INFO.match(opening["info"].strip())["argument"]
            i += 1
            while i < len(lines) and not _closes(lines[i], fence):
                i += 1
            i += 1
            start = i
            if kind == "solution-start":
                if current is not None:
                    raise ValueError(f"solution of {current!r} never ends")
                current = argument.strip()
            else:
                if current is None:
                    raise ValueError("a solution-end without a solution-start")
                current = None
    if current is not None:
        raise ValueError(f"solution of {current!r} never ends")
    return pieces


def render_notebook(
    notebook: nbformat.NotebookNode, page: str, index: BookIndex, root: Path = ROOT
) -> nbformat.NotebookNode:
    """``notebook`` (a chapter's cells, with or without outputs) for a notebook reader.

    Markdown is rendered (see :class:`Renderer`); every exercise's solution is
    moved, in order, under a "Solutions" heading at the end of the notebook
    (before the chapter's references), its cells tagged ``solution``. Code
    cells keep their source, outputs and relative order; a figure's PNG loses
    the phone rendering it carries for the web pages
    (:func:`whydeep.plotting.split_phone`), which a notebook never shows.
    """
    from whydeep.plotting import split_phone

    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                whole, phone = split_phone(base64.b64decode(png))
                if phone is not None:
                    output["data"]["image/png"] = base64.b64encode(whole).decode()
    pieces = _split_solutions(notebook.cells)
    body = [cell for cell, owner in pieces if owner is None]
    solutions: dict[str, list] = {}
    for cell, owner in pieces:
        if owner is not None:
            solutions.setdefault(owner, []).append(cell)
    # The references go last: find the cell holding the bibliography.
    tail = len(body)
    for i, cell in enumerate(body):
        if cell.cell_type == "markdown" and "{bibliography}" in cell.source:
            tail = i
            break
    renderer = Renderer(page, index, root, solved=solutions)
    bib_first = body[tail:]
    body = body[:tail]
    solution_cells = []
    if solutions:
        heading = nbformat.v4.new_markdown_cell(
            f"{SOLUTIONS_HEADING}\n\n"
            "The solutions of the exercises above, in order: try the exercises "
            "first. In JupyterLab this section opens folded; click its heading "
            "to unfold it."
        )
        heading.metadata["jp-MarkdownHeadingCollapsed"] = True
        heading.metadata["tags"] = [SOLUTION_CELL_TAG]
        solution_cells.append(heading)
        for label, cells in solutions.items():
            target = index.targets.get(label)
            name = target.name if target else label
            url = index.page_url(page, label)
            title = nbformat.v4.new_markdown_cell(
                f"### Solution to {name}\n\n"
                f"(The exercise is above, and on the book's page: [{name}]({url}).)"
            )
            title.metadata["tags"] = [SOLUTION_CELL_TAG]
            solution_cells.append(title)
            for cell in cells:
                tags = list(cell.metadata.get("tags", []))
                cell.metadata["tags"] = [*tags, SOLUTION_CELL_TAG]
                solution_cells.append(cell)
    cells = body + solution_cells + bib_first
    for cell in cells:
        if cell.cell_type == "markdown":
            cell.source = renderer.markdown(cell.source).strip("\n")
    notebook.cells = [c for c in cells if c.cell_type != "markdown" or c.source.strip()]
    seen: set[str] = set()
    for i, cell in enumerate(notebook.cells):  # split cells share their id
        if not cell.get("id") or cell.id in seen:
            cell.id = f"{cell.get('id') or 'cell'}-{i}"
        seen.add(cell.id)
    return notebook


def myst_markup(text: str) -> list[str]:
    """MyST roles, directives, labels and targets left in Markdown ``text``."""
    found = [m[0] for m in _ROLE.finditer(text)]
    for line in text.split("\n"):
        match = _OPEN.match(line)
        if match and _DIRECTIVE_INFO.match(match["info"].strip()):
            found.append(line.strip())
        if _TARGET.match(line.strip()):
            found.append(line.strip())
    found += [m[0][-40:] for m in re.finditer(r"\$\$[ \t]*\([\w.:-]+\)", text)]
    return found


def read_executed(build: Path, page: str) -> nbformat.NotebookNode:
    """The executed notebook of ``page`` in ``build``, with its outputs.

    When MyST-NB takes a page from its execution cache (its prose changed, its
    code did not), it writes ``jupyter_execute/<page>.ipynb`` without outputs;
    they are then read back from the build's cache, so that a published
    notebook never loses its outputs.
    """
    path = build / "jupyter_execute" / f"{page}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    if not code or any(c.get("outputs") for c in code):
        return notebook
    from jupyter_cache import get_cache

    cache = build / ".jupyter_cache"
    try:
        _, merged = get_cache(cache).merge_match_into_notebook(notebook)
    except KeyError as error:
        raise FileNotFoundError(
            f"{path} has no outputs and {cache} has none for it: rebuild the book"
        ) from error
    return merged


def colab_notebook(
    build: Path,
    page: str,
    config: dict,
    ref: str,
    *,
    index: BookIndex | None = None,
    requirement: str | None = None,
) -> nbformat.NotebookNode:
    """``page``'s executed notebook in ``build`` (outputs kept), rendered for a
    notebook reader, with the install cell first.

    ``requirement`` replaces the install cell's requirement (the rehearsals
    install from a local clone instead of GitHub).
    """
    notebook = read_executed(build, page)
    notebook = render_notebook(notebook, page, index or book_index(ROOT, config))
    cell = nbformat.v4.new_code_cell(install_cell_source(config, ref, requirement))
    cell.id = INSTALL_CELL_ID
    # Hidden wherever the notebook is rendered as a page (MyST-NB's tag).
    cell.metadata["tags"] = ["remove-cell"]
    notebook.cells.insert(0, cell)
    return notebook


def executed_pages(build: Path) -> list[str]:
    """Docnames of the pages that were executed and rendered by the last build."""
    executed = build / "jupyter_execute"
    pages = []
    for path in sorted(executed.rglob("*.ipynb")):
        page = path.relative_to(executed).with_suffix("").as_posix()
        if (build / "html" / f"{page}.html").is_file():
            pages.append(page)
    return pages


def write_notebooks(
    build: Path,
    out: Path,
    config: dict,
    ref: str,
    *,
    root: Path = ROOT,
    requirement: str | None = None,
) -> list[str]:
    """Write every executed page's Colab notebook under ``out``; their paths."""
    written = []
    index = book_index(root, config)
    for page in executed_pages(build):
        notebook = colab_notebook(
            build, page, config, ref, index=index, requirement=requirement
        )
        relative = _path_in_repo(config, page, ".ipynb")
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
        written.append(relative)
    url, _, _ = repository(config)
    (out / "README.md").write_text(
        f"# Notebooks of *{config['title']}*\n\n"
        f"Generated from {url}/commit/{ref} by `tools/notebooks.py`; do not edit.\n"
        f"Read the book at {pages_url(config)}.\n",
        encoding="utf-8",
    )
    return written


def source_notebook(root: Path, page: str, index: BookIndex) -> nbformat.NotebookNode:
    """``page``'s MyST source read as a notebook (jupytext), rendered, no outputs."""
    import jupytext

    notebook = jupytext.read(root / f"{page}.md", fmt="md:myst")
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return render_notebook(notebook, page, index, root)


def executable_pages(root: Path = ROOT) -> list[str]:
    """Docnames of the table of contents whose source has code cells."""
    pages, _ = toc_pages(root)
    return [
        page
        for page in pages
        if (root / f"{page}.md").is_file()
        and "```{code-cell}" in (root / f"{page}.md").read_text(encoding="utf-8")
    ]


def write_source_notebooks(root: Path, out: Path, config: dict) -> list[str]:
    """Binder's notebooks: every executable page, rendered, without outputs."""
    index = book_index(root, config)
    written = []
    for page in executable_pages(root):
        relative = _path_in_repo(config, page, ".ipynb")
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(source_notebook(root, page, index), target)
        written.append(relative)
    return written


def head_commit(root: Path) -> str:
    """The commit checked out in ``root``."""
    return subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, default=ROOT / "_build")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--ref", help="commit the install cell installs (default: HEAD)"
    )
    parser.add_argument("--print-branch", action="store_true")
    parser.add_argument(
        "--from-sources",
        action="store_true",
        help="Binder's notebooks: render the MyST sources, without outputs",
    )
    args = parser.parse_args(argv)
    config = load_config()
    if args.print_branch:
        print(notebooks_branch(config))
        return 0
    if args.out is None:
        parser.error("--out is required")
    if args.from_sources:
        for path in write_source_notebooks(ROOT, args.out, config):
            print(path)
        return 0
    written = write_notebooks(
        args.build, args.out, config, args.ref or head_commit(ROOT)
    )
    if not written:
        print(f"no executed pages under {args.build}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
