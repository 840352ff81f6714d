"""Sphinx extension: small repairs to how the pages read, for every page at once.

- **Proofs keep their structure.** sphinx-proof writes "Proof." in front of the
  proof's first source line, so a proof that begins with a numbered list loses
  the list (its steps run together in one paragraph). Here "Proof." goes into
  the first paragraph after parsing, or in a paragraph of its own before a
  list, an equation or anything else that is not a paragraph.
- **One citation style.** The text cites author–year ("Cybenko [1989]"), and
  the reference lists label each entry the same way ("[Cybenko, 1989]"),
  sorted by author and year, instead of keys such as "[Cyb89]".
- **Figures describe themselves.** :func:`whydeep.plotting.use_style` stores a
  description of each figure (its title, panels and axes) in the PNG it draws;
  the image's alt text is taken from there instead of being the file's path.
- **One output box per cell** for what it prints, however the kernel flushed
  it (:func:`merge_streams`).
- **Figures for phones.** A figure wider than a phone's column carries a
  second rendering laid out for it (:func:`whydeep.plotting.phone_png`, stored
  in a chunk of its PNG). The build writes that rendering to ``_images/``
  beside the figure, offers it to narrow windows with ``<picture>``, and
  removes it from the figure's own file, so that each reader downloads one of
  the two.
- **Only the icons the site shows.** The theme ships Font Awesome's script
  with the drawings of all its two thousand icons (1.5 MB, loaded by every
  page); the build keeps the drawings of the icons its pages name
  (:func:`subset_icons`).
- **Slider frames are files.** The frames of an interactive figure travel inside
  the notebook as data URIs (so the notebook stays self-contained); in the HTML
  each frame is written once to ``_images/`` and the page refers to it, so the
  page stays small and a frame loads only when the slider reaches it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import zlib
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------
# Proofs


def _proof_directive():
    from sphinx_proof.directive import ProofDirective
    from sphinx_proof.nodes import proof_node

    class StructuredProofDirective(ProofDirective):
        """``prf:proof`` whose content is parsed as written."""

        def run(self):
            kind = self.name.split(":")[1]
            classes = ["proof", kind, *self.options.get("class", [])]
            section = nodes.admonition(classes=classes, ids=[kind])
            self.state.nested_parse(self.content, self.content_offset, section)
            label = nodes.Text(f"{kind.title()}. ")
            first = section.children[0] if section.children else None
            if isinstance(first, nodes.paragraph):
                first.insert(0, label)
            else:
                section.insert(0, nodes.paragraph("", "", label))
            node = proof_node()
            node += section
            return [node]

    return StructuredProofDirective


# --------------------------------------------------------------------------
# Citations: author-year labels in the reference lists


def _register_bibliography_style() -> None:
    from pybtex.plugin import register_plugin
    from pybtex.richtext import Text
    from pybtex.style.formatting.unsrt import Style as UnsrtStyle
    from pybtex.style.labels import BaseLabelStyle

    def surname(person) -> str:
        latex = " ".join(person.prelast_names + person.last_names)
        return str(Text.from_latex(latex)).replace("{", "").replace("}", "")

    class AuthorYearLabels(BaseLabelStyle):
        """Labels such as "Cybenko, 1989", "Glorot and Bengio, 2010" and
        "Montúfar et al., 2014"; "a", "b", ... tell apart equal labels."""

        def format_labels(self, sorted_entries):
            labels = [self.format_label(entry) for entry in sorted_entries]
            counts = {label: labels.count(label) for label in labels}
            seen: dict[str, int] = {}
            for label in labels:
                if counts[label] > 1:
                    seen[label] = seen.get(label, 0) + 1
                    yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
                else:
                    yield label

        def format_label(self, entry) -> str:
            persons = entry.persons.get("author") or entry.persons.get("editor")
            names = [surname(p) for p in persons or []]
            if not names:
                who = entry.fields.get("key") or entry.key
            elif len(names) == 1:
                who = names[0]
            elif len(names) == 2:
                who = f"{names[0]} and {names[1]}"
            else:
                who = f"{names[0]} et al."
            return f"{who}, {entry.fields.get('year', 'n.d.')}"

    class BookStyle(UnsrtStyle):
        default_label_style = "whydeep-author-year"
        default_sorting_style = "author_year_title"

    register_plugin("pybtex.style.labels", "whydeep-author-year", AuthorYearLabels)
    register_plugin("pybtex.style.formatting", "whydeep", BookStyle)


# --------------------------------------------------------------------------
# Figures' alt text, read from the PNG's "Description"


def png_text(data: bytes) -> dict[str, str]:
    """The tEXt, zTXt and iTXt entries of a PNG (empty for anything else)."""
    from whydeep.plotting import png_chunks

    found = {}
    for kind, start, end in png_chunks(data):
        body = data[start + 8 : end - 4]
        try:
            if kind == b"tEXt":
                key, _, value = body.partition(b"\0")
                found[key.decode("latin-1")] = value.decode("latin-1")
            elif kind == b"zTXt":
                key, _, rest = body.partition(b"\0")
                found[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode(
                    "latin-1"
                )
            elif kind == b"iTXt":
                key, _, rest = body.partition(b"\0")
                compressed, rest = rest[0], rest[2:]
                _lang, _, rest = rest.partition(b"\0")
                _translated, _, value = rest.partition(b"\0")
                if compressed:
                    value = zlib.decompress(value)
                found[key.decode("latin-1")] = value.decode("utf-8")
            elif kind == b"IEND":
                break
        except (ValueError, zlib.error, IndexError):
            continue
    return found


def _image_path(app, node) -> Path | None:
    uri = node.get("candidates", {}).get("*") or node.get("uri", "")
    if not uri or "://" in uri or uri.startswith("data:"):
        return None
    path = Path(app.srcdir) / uri
    return path if path.is_file() else None


def merge_streams(doctree) -> int:
    """Join each run of consecutive printed-output blocks of a cell (stdout
    with stdout, stderr with stderr) into one block; returns how many blocks
    were absorbed. A cell whose prints were flushed in several pieces then shows
    one output box, as the notebook shows it. (MyST-NB's own
    ``nb_merge_streams`` does this too, but also corrupts the executed notebook
    it saves, which the notebook checks compare against.)"""

    def kind(node):
        if not isinstance(node, nodes.literal_block):
            return None
        classes = node.get("classes", [])
        if "stream" not in classes:
            return None
        return "stderr" if "stderr" in classes else "stdout"

    absorbed = 0
    for container in list(doctree.findall(nodes.container)):
        children = list(container.children)
        for first, second in itertools.pairwise(children):
            if second.parent is not container or first.parent is not container:
                continue
            if kind(first) is None or kind(first) != kind(second):
                continue
            text = first.astext()
            if text and not text.endswith("\n"):
                text += "\n"
            text += second.astext()
            # keep the later block, holding both texts, so runs of three join too
            second.rawsource = text
            second.children = []
            second += nodes.Text(text)
            container.remove(first)
            absorbed += 1
    return absorbed


def _on_doctree_resolved(app, doctree, docname) -> None:
    from whydeep.plotting import split_phone

    merge_streams(doctree)
    for node in doctree.findall(nodes.image):
        path = _image_path(app, node)
        if path is None or path.suffix.lower() != ".png":
            continue
        data = path.read_bytes()
        _, phone = split_phone(data)
        if phone is not None:
            target = Path(app.outdir) / "_images" / _phone_name(path.name)
            if not target.exists() or target.read_bytes() != phone:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(phone)
        alt = node.get("alt", "")
        if alt and alt != node.get("uri"):
            continue
        description = png_text(data).get("Description", "").strip()
        if description:
            node["alt"] = description


def _phone_name(name: str) -> str:
    return name.removesuffix(".png") + "-phone.png"


_IMG = re.compile(r'<img [^>]*?src="([^"]*_images/)([^"/]+\.png)"[^>]*>')


def offer_phone_renderings(body: str, images: Path, media: str) -> str:
    """Wrap each ``<img>`` of ``_images/NAME.png`` for which ``images`` holds
    ``NAME-phone.png`` in a ``<picture>`` that offers that file, at twice the
    pixels of its shown size, to windows matching ``media``."""
    from whydeep.plotting import png_size

    def wrap(match: re.Match) -> str:
        folder, name = match.group(1), match.group(2)
        phone = images / _phone_name(name)
        if not phone.is_file():
            return match.group(0)
        width, height = png_size(phone.read_bytes()[:24])
        return (
            f'<picture><source media="{media}" '
            f'srcset="{folder}{_phone_name(name)} 2x" '
            f'width="{width // 2}" height="{height // 2}">'
            f"{match.group(0)}</picture>"
        )

    return _IMG.sub(wrap, body)


def _on_build_finished(app, exception) -> None:
    """Take the phone renderings out of the figures' own files, and the icons
    no page shows out of the icon script."""
    from whydeep.plotting import split_phone

    if exception is not None:
        return
    out = Path(app.outdir)
    for path in (out / "_images").glob("*.png"):
        data = path.read_bytes()
        whole, phone = split_phone(data)
        if phone is not None:
            path.write_bytes(whole)
    icons = out / "_static" / "scripts" / "fontawesome.js"
    if icons.is_file():
        texts = [p.read_text(errors="replace") for p in out.rglob("*.html")]
        texts += [
            p.read_text(errors="replace")
            for p in (out / "_static").rglob("*.js")
            if p != icons
        ]
        used = {m for text in texts for m in _ICON_CLASS.findall(text)}
        icons.write_text(subset_icons(icons.read_text(), used))


_ICON_CLASS = re.compile(r"\bfa-([a-z0-9-]+)")
# One icon of Font Awesome's bundle: name: [width, height, [aliases], "code", path]
_ICON = re.compile(
    r'(?P<key>"[^"\\]+"|[A-Za-z0-9_$]+):\[\d+,\d+,\[(?P<aliases>[^\]]*)\],'
    r'"[0-9a-f]+",(?:"[^"]*"|\[[^\]]*\])\],?'
)


def subset_icons(script: str, used: set[str]) -> str:
    """Font Awesome's ``script`` keeping only the icons named (or aliased) in
    ``used``; its code and everything else stay as they are."""

    def keep(match: re.Match) -> str:
        names = {match.group("key").strip('"')}
        names |= set(re.findall(r'"([^"]+)"', match.group("aliases")))
        return match.group(0) if names & used else ""

    return _ICON.sub(keep, script)


# --------------------------------------------------------------------------
# Slider frames: data URIs in the page -> files in _images/

_DATA_URI = re.compile(r"data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)")
_SLIDER = re.compile(r'<div class="whydeep-slider".*?</script></div>', re.DOTALL)


def _dedupe_scripts(context) -> None:
    """Each script once: extensions that add their inline settings at every
    page (togglebutton, thebe) otherwise declare the same ``const`` twice,
    which the browser reports as an error."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        # an inline script is added once with filename None, once with ""
        filename = str(getattr(script, "filename", script) or "")
        attributes = getattr(script, "attributes", {})
        key = (filename, tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def _on_html_page_context(app, pagename, templatename, context, doctree) -> None:
    from whydeep.plotting import PHONE_MEDIA

    _dedupe_scripts(context)
    body = context.get("body")
    if not body:
        return
    images = Path(app.outdir) / "_images"
    if "_images/" in body:
        body = context["body"] = offer_phone_renderings(body, images, PHONE_MEDIA)
    if "whydeep-slider" not in body:
        return

    def to_file(match: re.Match) -> str:
        kind, payload = match.group(1), match.group(2)
        data = base64.b64decode(payload)
        name = f"frame-{hashlib.sha256(data).hexdigest()[:20]}.{kind}"
        target = images / name
        if not target.exists():
            images.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return context["pathto"](f"_images/{name}", 1)

    def slider(match: re.Match) -> str:
        return _DATA_URI.sub(to_file, match.group(0))

    context["body"] = _SLIDER.sub(slider, body)


# --------------------------------------------------------------------------
# The package versions the book was built with


def pinned_requirements(path: Path) -> list[tuple[str, str]]:
    """``(name, pinned version)`` of every ``name==version`` line of ``path``."""
    pins = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins.append((name.strip(), version.strip()))
    return pins


def _versions_directive():
    from importlib.metadata import PackageNotFoundError, version
    from platform import python_version

    from docutils.parsers.rst import Directive

    class VersionsDirective(Directive):
        """A table of the pinned packages (requirements.txt) and the versions
        installed in the environment that built the book."""

        has_content = False

        def run(self):
            env = self.state.document.settings.env
            pins = pinned_requirements(Path(env.app.confdir) / "requirements.txt")
            rows = [("Python", "", python_version())]
            for name, pinned in pins:
                try:
                    installed = version(name)
                except PackageNotFoundError:
                    installed = "not installed"
                rows.append((name, pinned, installed))
            table = nodes.table(classes=["whydeep-versions"])
            group = nodes.tgroup(cols=3)
            table += group
            for _ in range(3):
                group += nodes.colspec(colwidth=1)
            head = nodes.thead()
            group += head
            body = nodes.tbody()
            group += body
            for target, cells in [(head, ("package", "pinned", "installed"))] + [
                (body, row) for row in rows
            ]:
                row = nodes.row()
                for cell in cells:
                    entry = nodes.entry()
                    entry += nodes.paragraph(text=cell)
                    row += entry
                target += row
            return [table]

    return VersionsDirective


def _on_config_inited(app, config) -> None:
    # The theme's colour mode starts from the reader's system setting; without
    # a default the theme logs an error on every page.
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "auto")
    config.html_context = context


def _on_builder_inited(app) -> None:
    # Extensions that teach only the "html" builder their nodes (sphinx-proof)
    # break the single-page build that the PDF is printed from: lend it those.
    handlers = app.registry.translation_handlers
    single = handlers.setdefault("singlehtml", {})
    for node, visitors in handlers.get("html", {}).items():
        single.setdefault(node, visitors)


def setup(app):
    app.connect("config-inited", _on_config_inited)
    app.connect("builder-inited", _on_builder_inited)
    app.add_directive("whydeep-versions", _versions_directive())
    app.add_directive_to_domain("prf", "proof", _proof_directive(), override=True)
    _register_bibliography_style()
    app.connect("doctree-resolved", _on_doctree_resolved)
    app.connect("build-finished", _on_build_finished)
    # Late, after the themes and extensions have added their page scripts.
    app.connect("html-page-context", _on_html_page_context, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
