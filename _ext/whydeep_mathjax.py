"""Sphinx extension: MathJax from the built site itself, not from a CDN.

Sphinx loads MathJax 3 from a CDN by default, so a downloaded copy of the book,
or a classroom without network, shows every formula as raw TeX. This extension
copies MathJax from the npm package pinned in ``package.json`` (installed into
``node_modules/`` by ``npm ci``) into ``_static/mathjax/`` of the HTML output
and points ``mathjax_path`` at it: the CommonHTML output with its web fonts, the
TeX extensions MathJax loads on demand, and the menu's accessibility parts.

The build fails with a clear message when the package is not installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: The combined component each page loads (TeX input, CommonHTML output, menu).
ENTRY = "tex-chtml.js"
#: What MathJax loads lazily from beside ``ENTRY``.
PARTS = (
    ENTRY,
    "input/tex/extensions",
    "output/chtml/fonts/woff-v2",
    "ui",
    "a11y",
    "sre",
)
TARGET = "mathjax"  # under _static/


def source_dir(app) -> Path:
    """The ``es5`` folder of the installed ``mathjax`` package."""
    return Path(app.confdir) / app.config.whydeep_mathjax_dir


def _on_config_inited(app, config) -> None:
    source = source_dir(app)
    if not (source / ENTRY).is_file():
        raise ExtensionError(
            f"whydeep_mathjax: {source / ENTRY} is missing; install the pinned "
            "MathJax with `npm ci --ignore-scripts` (make book does this)"
        )
    config.mathjax_path = f"{TARGET}/{ENTRY}"


def _on_build_finished(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source = source_dir(app)
    target = Path(app.outdir) / "_static" / TARGET
    for part in PARTS:
        src, dst = source / part, target / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    licence = source.parent / "LICENSE"
    if licence.is_file():
        shutil.copy2(licence, target / "LICENSE")
    logger.info("whydeep_mathjax: MathJax copied to %s", target)


def setup(app):
    app.add_config_value(
        "whydeep_mathjax_dir", "node_modules/mathjax/es5", "html", types=[str]
    )
    # After the configuration is read, before sphinx.ext.mathjax uses it.
    app.connect("config-inited", _on_config_inited, priority=400)
    app.connect("build-finished", _on_build_finished)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
