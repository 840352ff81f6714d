"""Sphinx extension: cached chapter outputs are never older than the package.

MyST-NB's execution cache (jupyter-cache) keys a page on the source of its code
cells. A page that prints ``whydeep.something()`` therefore keeps its cached
output after ``something`` changes in ``src/whydeep/``, and a plain rebuild
would publish the old numbers. This extension fingerprints everything the pages
run on (the package's files, ``requirements.txt`` and ``pyproject.toml``); when
the fingerprint differs from the one stored beside the cache, it empties the
cache and asks Sphinx to re-read every page, so every page re-executes.

It also sets ``WHYDEEP_BUILD=1`` for the kernels the build starts, which tells
:func:`whydeep.plotting.interactive` to embed precomputed frames rather than
live widgets.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

FINGERPRINT_FILE = "whydeep-fingerprint.txt"
WATCHED = ("src/whydeep", "requirements.txt", "pyproject.toml")


def fingerprint(root: Path) -> str:
    """SHA-256 over the relative paths and bytes of every watched file."""
    digest = hashlib.sha256()
    for name in WATCHED:
        path = root / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if (
                not file.is_file()
                or "__pycache__" in file.parts
                or file.suffix == ".pyc"
            ):
                continue
            digest.update(file.relative_to(root).as_posix().encode() + b"\0")
            digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def _cache_dir(app) -> Path:
    configured = app.config.nb_execution_cache_path
    if configured:
        return Path(configured)
    return Path(app.outdir).parent / ".jupyter_cache"


def _on_builder_inited(app) -> None:
    root = Path(app.confdir)
    cache = _cache_dir(app)
    stamp = cache.parent / FINGERPRINT_FILE
    current = fingerprint(root)
    previous = stamp.read_text().strip() if stamp.is_file() else None
    app.env.whydeep_fingerprint = current
    app.env.whydeep_stale = previous != current
    if app.env.whydeep_stale:
        if cache.exists():
            logger.info("whydeep changed since the last build: emptying %s", cache)
            shutil.rmtree(cache)
        else:
            logger.info("whydeep: no fingerprint yet, every page executes")


def _on_env_get_outdated(app, env, added, changed, removed):
    if getattr(env, "whydeep_stale", False):
        return sorted(env.found_docs - set(removed))
    return []


def _on_build_finished(app, exception) -> None:
    if exception is not None:
        return
    stamp = _cache_dir(app).parent / FINGERPRINT_FILE
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(app.env.whydeep_fingerprint + "\n")
    app.env.whydeep_stale = False


def setup(app):
    os.environ["WHYDEEP_BUILD"] = "1"
    app.connect("builder-inited", _on_builder_inited)
    app.connect("env-get-outdated", _on_env_get_outdated)
    app.connect("build-finished", _on_build_finished)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
