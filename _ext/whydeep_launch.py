"""Sphinx extension: the Colab and Binder buttons open the chapter as a notebook.

sphinx-book-theme points its Colab button at the page's source in the
repository, ``.../blob/<branch>/book/<page>.md``; Colab opens only ``.ipynb``
files from GitHub. The publishing workflow therefore pushes every executed
page, as a notebook with its outputs and an install cell first, to a branch of
its own (``whydeep_notebooks_branch``, made by ``tools/notebooks.py``). This
extension rewrites each Colab button to that notebook:
``.../blob/<notebooks branch>/book/<page>.ipynb``.

The Binder button likewise opens the page's source, ``urlpath=lab/tree/book/<page>.md``;
``binder/postBuild`` writes every chapter, rendered for a notebook reader and
without outputs, to ``<whydeep_binder_folder>/book/<page>.ipynb`` (see
``tools/notebooks.py``), and the button is pointed there.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from sphinx.util import logging

logger = logging.getLogger(__name__)

# colab_url/github/<org>/<repo>/blob/<branch>/<path in the repository>
_COLAB = re.compile(r"^(?P<base>.+/github/[^/]+/[^/]+)/blob/[^/]+/(?P<path>.+)$")


def colab_notebook_url(url: str, branch: str) -> str:
    """The theme's Colab ``url`` moved to ``branch`` and to the ``.ipynb`` path."""
    match = _COLAB.match(url)
    if match is None:
        raise ValueError(f"url={url!r} is not a Colab GitHub link")
    path = PurePosixPath(match["path"]).with_suffix(".ipynb")
    return f"{match['base']}/blob/{branch}/{path}"


_BINDER = re.compile(r"^(?P<base>.+[?&]urlpath=[a-z]+/tree/)(?P<path>[^&]+)$")


def binder_notebook_url(url: str, folder: str) -> str:
    """The theme's Binder ``url`` moved to the rendered notebook in ``folder``."""
    match = _BINDER.match(url)
    if match is None:
        raise ValueError(f"url={url!r} is not a Binder link with a urlpath")
    path = PurePosixPath(match["path"]).with_suffix(".ipynb")
    return f"{match['base']}{folder}/{path}"


def _on_page_context(app, pagename, templatename, context, doctree):
    branch = app.config.whydeep_notebooks_branch
    folder = app.config.whydeep_binder_folder
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            if button.get("text") == "Colab":
                button["url"] = colab_notebook_url(button["url"], branch)
            elif button.get("text") == "Binder":
                button["url"] = binder_notebook_url(button["url"], folder)


def setup(app):
    app.add_config_value("whydeep_notebooks_branch", "notebooks", "html", types=[str])
    app.add_config_value("whydeep_binder_folder", "notebooks", "html", types=[str])
    # After sphinx-book-theme's add_launch_buttons (priority 501).
    app.connect("html-page-context", _on_page_context, priority=550)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
