"""The book's published places, and the notebooks that Colab opens.

Everything here derives from ``repository.url`` in ``_config.yml``: the GitHub
Pages address, the Binder and Colab links, and the install cell.

Colab opens only ``.ipynb`` files from GitHub, so the publishing workflow turns
every executed page of a build (``_build/jupyter_execute/<page>.ipynb``, with its
outputs) into a notebook whose first cell installs ``whydeep`` from the
repository at the commit the book was built from, and pushes those notebooks to
the branch named by ``whydeep_notebooks_branch``, at ``<page>.ipynb``: the path
the Colab buttons link to (see ``_ext/whydeep_launch.py``).

    python tools/notebooks.py --out _build/notebooks [--ref COMMIT]
    python tools/notebooks.py --print-branch
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
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


def binder_url(config: dict, page: str) -> str:
    """The Binder link of ``page``: its MyST source, opened as a notebook."""
    _, owner, name = repository(config)
    base = config["launch_buttons"]["binderhub_url"].rstrip("/")
    branch = config["repository"]["branch"]
    path = _path_in_repo(config, page, ".md")
    return f"{base}/v2/gh/{owner}/{name}/{branch}?urlpath=lab/tree/{path}"


def install_requirement(config: dict, ref: str) -> str:
    """The pip requirement for the package at commit (or branch) ``ref``."""
    if not re.fullmatch(r"[0-9A-Za-z._/-]+", ref):
        raise ValueError(f"ref={ref!r} is not a commit or branch name")
    url, _, _ = repository(config)
    return f"{PACKAGE} @ git+{url}@{ref}"


def install_cell_source(config: dict, ref: str) -> str:
    """First cell of a published notebook: a no-op where the package imports."""
    requirement = install_requirement(config, ref)
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


def colab_notebook(executed: Path, config: dict, ref: str) -> nbformat.NotebookNode:
    """The executed notebook (outputs kept) with the install cell first."""
    notebook = nbformat.read(executed, as_version=4)
    cell = nbformat.v4.new_code_cell(install_cell_source(config, ref))
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


def write_notebooks(build: Path, out: Path, config: dict, ref: str) -> list[str]:
    """Write every executed page's Colab notebook under ``out``; their paths."""
    written = []
    for page in executed_pages(build):
        notebook = colab_notebook(
            build / "jupyter_execute" / f"{page}.ipynb", config, ref
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


def _head_commit(root: Path) -> str:
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
    args = parser.parse_args(argv)
    config = load_config()
    if args.print_branch:
        print(notebooks_branch(config))
        return 0
    if args.out is None:
        parser.error("--out is required")
    written = write_notebooks(
        args.build, args.out, config, args.ref or _head_commit(ROOT)
    )
    if not written:
        print(f"no executed pages under {args.build}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
