"""Rehearse a reader's launch of every chapter on this machine, offline.

A reader presses Colab or Binder and runs a chapter top to bottom in a fresh
kernel. This module does the same here, without the network:

- **One environment** (``.venv/rehearsal/venv``), made from ``binder/requirements.txt``
  (the packages a hosted notebook has: torch, numpy, scipy, matplotlib,
  scikit-learn, ipykernel, ipywidgets, at the book's pins, plus jupytext) with
  only its PyTorch index line swapped for the local torch wheel source, and
  *without* ``whydeep``. It is made once and reused while the files that define
  it do not change (``python tools/rehearse.py setup``; ``make rehearsal-env``).
  A setuptools wheel is kept beside it, so that pip can build the package from a
  git URL with ``--no-index``.
- **Colab** (:func:`colab`): each published notebook, made by
  ``tools/notebooks.py`` from the built book, with its install cell pointed at
  this checkout (``whydeep @ git+file://...@<HEAD>``, the same requirement form as
  the real cell), executed in a fresh kernel in an empty temporary folder
  outside the repository. The kernel sees only what ``whydeep`` declares
  (``tools/rehearsal_kernel.py``). ``whydeep`` is uninstalled before each
  notebook, so every install cell really installs.
- **Binder** (:func:`binder`): a clone of the checkout at HEAD, ``binder/postBuild``
  run in it as repo2docker runs it, then each rendered notebook it wrote
  (``notebooks/<page>.ipynb``, no outputs) executed where Binder opens it.
- **Live widgets** (:func:`poke_widgets`): after a Colab notebook has run, every
  interactive figure's ipywidgets controls are moved, in the same kernel, and
  the figure drawn at the new value must differ from the first (which must
  redraw identically).

Text outputs are compared with the book's executed notebooks under nbval's
rules (:func:`compare`): streams coalesced, images and widget model ids
skipped, ``tests/nbval_sanitize.cfg`` applied. Interactive figures are embedded
as static sliders in the book and are live widgets here; those outputs are
left to the live-widget check.

    python tools/rehearse.py setup          # make or reuse the environment
    python tools/rehearse.py colab|binder   # rehearse every chapter, print a summary
    python tools/rehearse.py compare BOOK.ipynb RUN.ipynb   # nbformat only
    python tools/rehearse.py hosted PUBLISHED/ RESULTS/      # in a hosted runtime
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
# Inside .venv: ignored by git, by the book build and by the copies the build
# test and `make bench` make, and removed with it.
HOME = Path(os.environ.get("WHYDEEP_REHEARSAL_DIR", ROOT / ".venv" / "rehearsal"))
VENV = HOME / "venv"
WHEELHOUSE = HOME / "wheelhouse"
STAMP = HOME / "installed.json"
PYTHON = VENV / "bin" / "python"
KERNEL_SCRIPT = Path(__file__).with_name("rehearsal_kernel.py")
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
#: What nbval leaves out of a comparison (nbval 0.11, without --nbdime).
SKIP_COMPARE = {
    "metadata",
    "traceback",
    "prompt_number",
    "output_type",
    "name",
    "execution_count",
    "application/vnd.jupyter.widget-view+json",
    "image/png",
    "image/jpeg",
}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STATIC_SLIDER = 'class="whydeep-slider"'
TORCH_INDEX = re.compile(
    r"^\s*--(?:extra-)?index-url\s+\S*download\.pytorch\.org\S*\s*$"
)
# seconds per cell, as the book build allows (_config.yml: execute.timeout)
CELL_TIMEOUT = int(os.environ.get("WHYDEEP_CELL_TIMEOUT", "300"))


# --------------------------------------------------------------------------
# The environment
# --------------------------------------------------------------------------


def local_torch_source() -> str | None:
    """Where this machine keeps its torch wheel (pip's ``find-links``), if any."""
    if os.environ.get("WHYDEEP_TORCH_FIND_LINKS"):
        return os.environ["WHYDEEP_TORCH_FIND_LINKS"]
    for source in (os.environ.get("PIP_FIND_LINKS", ""), _pip_config("find-links")):
        for place in source.split():
            folder = Path(place.removeprefix("file://"))
            if folder.is_dir() and any(folder.glob("torch-*.whl")):
                return str(folder)
    return None


def _pip_config(key: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
    )
    values = []
    for line in result.stdout.splitlines():
        name, _, value = line.partition("=")
        if name.split(".")[-1] == key:
            values.append(value.strip().strip("'\""))
    return " ".join(values)


def rehearsal_requirements(text: str, torch_source: str | None) -> str:
    """``binder/requirements.txt`` with only its PyTorch index line swapped for
    ``--find-links torch_source`` (unchanged when there is no local source)."""
    if torch_source is None:
        return text
    lines = text.splitlines()
    swapped = [
        f"--find-links {torch_source}" if TORCH_INDEX.match(line) else line
        for line in lines
    ]
    if swapped == lines:
        raise ValueError("binder/requirements.txt has no PyTorch index line to swap")
    return "\n".join(swapped) + "\n"


def environment_key() -> str:
    """Fingerprint of what defines the environment (a new one when it changes)."""
    digest = hashlib.sha256()
    for path in (ROOT / "binder" / "requirements.txt", ROOT / "binder" / "runtime.txt"):
        digest.update(path.read_bytes())
    digest.update(sys.version.split()[0].encode())
    return digest.hexdigest()


def environment_ready() -> bool:
    try:
        return json.loads(STAMP.read_text())["key"] == environment_key()
    except (OSError, ValueError, KeyError):
        return False


def setup(force: bool = False) -> float:
    """Make the rehearsal environment unless it is current; seconds spent."""
    if environment_ready() and not force and PYTHON.exists():
        return 0.0
    start = time.perf_counter()
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    requirements = HOME / "requirements.txt"
    requirements.write_text(
        rehearsal_requirements(
            (ROOT / "binder" / "requirements.txt").read_text(), local_torch_source()
        )
    )
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "--quiet", "-r", str(requirements)], check=True)
    # Build requirements of the package (pyproject.toml), for offline builds.
    build = _build_requirements()
    subprocess.run(
        [*pip, "download", "--quiet", "--no-deps", "--dest", str(WHEELHOUSE), *build],
        check=True,
    )
    seconds = time.perf_counter() - start
    STAMP.write_text(
        json.dumps({"key": environment_key(), "seconds": round(seconds, 1)})
    )
    return seconds


def _build_requirements() -> list[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(project["build-system"]["requires"])


def offline_environment(home: Path) -> dict[str, str]:
    """The environment of every process of a rehearsal: no index, no book build."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "PYTHON", "JUPYTER", "VIRTUAL_ENV", "WHYDEEP_"))
        and key not in ("MPLBACKEND", "MPLCONFIGDIR")
    }
    env.update(
        HOME=str(home),
        PATH=f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(WHEELHOUSE),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_CONFIG_FILE=os.devnull,
        PYTHONNOUSERSITE="1",
        GIT_CONFIG_NOSYSTEM="1",
    )
    return env


def pip_in_environment(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [str(PYTHON), "-m", "pip", *args], check=True, env=env, capture_output=True
    )


def uninstall_package(env: dict[str, str]) -> None:
    """Leave the cached environment as it was made: without ``whydeep``."""
    subprocess.run(
        [str(PYTHON), "-m", "pip", "uninstall", "--quiet", "--yes", "whydeep"],
        env=env,
        capture_output=True,
    )
    check = subprocess.run(
        [
            str(PYTHON),
            "-c",
            "import importlib.util as u; print(u.find_spec('whydeep'))",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if check.stdout.strip() != "None":
        raise RuntimeError(f"whydeep is still importable in {VENV}: {check.stdout}")


# --------------------------------------------------------------------------
# Executing a notebook in a fresh kernel
# --------------------------------------------------------------------------


@contextlib.contextmanager
def _process_environment(env: dict[str, str]):
    """``os.environ`` replaced by ``env`` (a kernel inherits the launcher's)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _kernel_manager(folder: Path, declared_only: bool | None):
    """A kernel of the rehearsal environment (``declared_only``: behind the
    import hook of ``tools/rehearsal_kernel.py``), or, with ``None``, the
    current environment's default ``python3`` kernel (a hosted runtime's)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    if declared_only is None:
        return AsyncKernelManager(kernel_name="python3")
    name = "whydeep-rehearsal"
    spec = folder / "kernels" / name
    spec.mkdir(parents=True, exist_ok=True)
    argv = [str(PYTHON)]
    argv += [str(KERNEL_SCRIPT)] if declared_only else ["-m", "ipykernel_launcher"]
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [*argv, "-f", "{connection_file}"],
                "display_name": "rehearsal",
                "language": "python",
            }
        )
    )
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
    return AsyncKernelManager(kernel_name=name, kernel_spec_manager=specs)


@dataclass
class Run:
    """One notebook executed top to bottom, and what was seen live."""

    page: str
    notebook: nbformat.NotebookNode
    seconds: float
    widgets: list[dict] = field(default_factory=list)


def execute(
    notebook: nbformat.NotebookNode,
    page: str,
    cwd: Path,
    env: dict[str, str],
    *,
    declared_only: bool | None,
    widgets: bool = False,
) -> Run:
    """Execute ``notebook`` in a fresh kernel of the rehearsal environment, in
    ``cwd``; raise ``nbclient.exceptions.CellExecutionError`` on an error.
    With ``widgets``, move every interactive figure's controls afterwards."""
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient

    notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    with tempfile.TemporaryDirectory(prefix="whydeep-kernel-") as specs:
        km = _kernel_manager(Path(specs), declared_only)
        client = NotebookClient(
            notebook,
            km=km,
            timeout=CELL_TIMEOUT,
            allow_errors=False,
            resources={"metadata": {"path": str(cwd)}},
        )
        start = time.perf_counter()
        seen = []
        try:
            with _process_environment(env), client.setup_kernel():
                for index, cell in enumerate(notebook.cells):
                    client.execute_cell(cell, index)
                seconds = time.perf_counter() - start
                if widgets:
                    seen = poke_widgets(client, notebook)
        finally:
            # nbclient leaves a kernel manager it was given running
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=True)
    return Run(page, notebook, seconds, seen)


POKE = """\
import hashlib as _h, json as _j
from IPython import get_ipython as _ip
from ipywidgets import interactive as _interactive
try:
    from ipywidgets.widgets.widget import _instances as _all_widgets
except ImportError:  # ipywidgets 7
    from ipywidgets import Widget as _Widget
    _all_widgets = _Widget.widgets

def _whydeep_frame(control, value):
    # set a control as a reader's click does; the figures it displays, hashed
    pngs = []
    def hook(msg):
        data = msg.get("content", {{}}).get("data", {{}})
        if "image/png" in data:
            # bytes before the message is serialised (the book's formatter), or
            # base64 text (IPython's own)
            png = data["image/png"]
            pngs.append(_h.sha256(png if isinstance(png, bytes) else png.encode()).hexdigest())
        return msg
    publisher = _ip().display_pub
    publisher.register_hook(hook)
    try:
        control.value = value
    finally:
        publisher.unregister_hook(hook)
    return pngs

_w = _all_widgets[{model_id!r}]
_report = {{"interactive": isinstance(_w, _interactive), "controls": []}}
for _c in getattr(_w, "kwargs_widgets", []):
    _options = list(getattr(_c, "options", []))
    _values = [v for _, v in _options] if _options and isinstance(_options[0], tuple) else _options
    _first = _c.value
    _other = next((v for v in reversed(_values) if v != _first), _first)
    _c.value = _other
    _report["controls"].append({{
        "type": type(_c).__name__, "description": _c.description,
        "first_value": repr(_first), "moved_to": repr(_other),
        "first": _whydeep_frame(_c, _first),
        "moved": _whydeep_frame(_c, _other),
        "first_again": _whydeep_frame(_c, _first),
    }})
print("WHYDEEP-WIDGET " + _j.dumps(_report))
"""


def widget_cells(notebook: nbformat.NotebookNode) -> dict[int, list[str]]:
    """``cell index -> model ids`` of the widget views a cell displayed."""
    found = {}
    for index, cell in enumerate(notebook.cells):
        ids = [
            output["data"][WIDGET_VIEW]["model_id"]
            for output in cell.get("outputs", [])
            if WIDGET_VIEW in output.get("data", {})
        ]
        if ids:
            found[index] = ids
    return found


def poke_widgets(client, notebook: nbformat.NotebookNode) -> list[dict]:
    """Move each displayed interactive figure's controls in the live kernel.

    For every control: the figure at the first value, redrawn there again, and
    at another value (PNG hashes). Called after the whole notebook ran, so the
    notebook's own outputs are untouched.
    """
    reports = []
    for index, model_ids in list(widget_cells(notebook).items()):
        for model_id in model_ids:
            cell = nbformat.v4.new_code_cell(POKE.format(model_id=model_id))
            notebook.cells.append(cell)  # nbclient stores a cell at its index
            try:
                client.execute_cell(cell, len(notebook.cells) - 1)
            finally:
                notebook.cells.pop()
            text = "".join(
                o.get("text", "")
                for o in cell.outputs
                if o.get("output_type") == "stream"
            )
            match = re.search(r"^WHYDEEP-WIDGET (.*)$", text, re.M)
            if match is None:
                raise RuntimeError(
                    f"cell {index}: no report from the widget check: {text}"
                )
            report = json.loads(match[1])
            report["cell"] = index
            reports.append(report)
    return reports


# --------------------------------------------------------------------------
# Comparing with the book (nbval's rules)
# --------------------------------------------------------------------------


def sanitize_patterns(path: Path = SANITIZE) -> list[tuple[str, str]]:
    """``(regex, replace)`` pairs of an nbval sanitize file."""
    import configparser

    parser = configparser.ConfigParser()
    parser.read(path)
    return [(parser[s]["regex"], parser[s]["replace"]) for s in parser.sections()]


def _flatten(outputs: list, patterns) -> dict[str, list]:
    """nbval's view of a cell's outputs: streams coalesced by name, MIME data
    flattened, skipped keys dropped, strings sanitised."""
    streams: dict[str, str] = {}
    rest = []
    for output in outputs:
        if output.get("output_type") == "stream":
            streams[output["name"]] = streams.get(output["name"], "") + output["text"]
        else:
            rest.append(output)
    flat: dict[str, list] = {}

    def add(key, value):
        if isinstance(value, str):
            for regex, replace in patterns:
                value = re.sub(regex, replace, value)
        flat.setdefault(key, []).append(value)

    for name, text in streams.items():
        while re.search(r"[^\n]\x08", text):
            text = re.sub(r"[^\n]\x08", "", text)
        add(name, re.sub(r"^.*\r(?=[^\n])", "", text, flags=re.M))
    for output in rest:
        for key, value in output.items():
            if key in SKIP_COMPARE:
                continue
            if key == "data":
                for mime, data in value.items():
                    if mime not in SKIP_COMPARE:
                        add(mime, data)
            else:
                add(key, value)
    return flat


def _html(output) -> str:
    html = output.get("data", {}).get("text/html", "")
    return "".join(html) if isinstance(html, list) else html


def is_static_slider(output) -> bool:
    """An interactive figure as the book embeds it (no kernel)."""
    return STATIC_SLIDER in _html(output)


def is_live_widget(output) -> bool:
    """A widget shown by a live kernel (an interactive figure's controls, a
    progress bar), or the function ``ipywidgets.interact`` returns."""
    data = output.get("data", {})
    plain = data.get("text/plain", "")
    plain = "".join(plain) if isinstance(plain, list) else plain
    return WIDGET_VIEW in data or (
        output.get("output_type") == "execute_result" and ".show(**values)" in plain
    )


def nbval_ignores(cell) -> bool:
    """nbval's per-cell markers: the tags ``nbval-ignore-output``/``nbval-skip``
    or the comments ``# NBVAL_IGNORE_OUTPUT``/``# NBVAL_SKIP`` (errors still count)."""
    tags = set(cell.get("metadata", {}).get("tags", []))
    if tags & {"nbval-ignore-output", "nbval-skip"}:
        return True
    first = cell.source.lstrip().split("\n", 1)[0].strip()
    return first in ("# NBVAL_IGNORE_OUTPUT", "# NBVAL_SKIP")


def compare(
    book: nbformat.NotebookNode, run: nbformat.NotebookNode, patterns=None
) -> list[str]:
    """Differences between the book's text outputs and a rehearsal's.

    Code cells are paired by source, in order (a rendered notebook starts with an
    install cell the book does not have). Errors in the rehearsal are
    differences. Interactive figures (static sliders without a kernel, live
    widgets with one) and other live widgets (progress bars) are left out; a
    cell with an interactive figure in the book must show one in the rehearsal
    (the live-widget check then moves its controls).
    """
    patterns = sanitize_patterns() if patterns is None else patterns
    problems = []
    reference = [c for c in book.cells if c.cell_type == "code"]
    used = [False] * len(reference)
    for cell in run.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(
                    f"error in {cell.source[:60]!r}: "
                    f"{output.get('ename')}: {output.get('evalue')}"
                )
        match = next(
            (
                i
                for i, c in enumerate(reference)
                if not used[i] and c.source == cell.source
            ),
            None,
        )
        if match is None:
            continue  # the install cell
        used[match] = True
        if nbval_ignores(reference[match]):
            continue  # nbval does not compare this cell's output either
        mine, theirs = cell.get("outputs", []), reference[match].get("outputs", [])
        if any(map(is_static_slider, theirs)) and not any(
            is_live_widget(o) or is_static_slider(o) for o in mine
        ):
            problems.append(
                f"cell {cell.source[:60]!r}: an interactive figure in the book, "
                "none in the rehearsal"
            )

        def text(outputs):
            kept = [
                o for o in outputs if not is_live_widget(o) and not is_static_slider(o)
            ]
            return _flatten(kept, patterns)

        want, got = text(theirs), text(mine)
        if want != got:
            problems.append(
                f"cell {cell.source.splitlines()[0][:60]!r}: outputs differ\n"
                f"  book:      {json.dumps(want)[:600]}\n"
                f"  rehearsal: {json.dumps(got)[:600]}"
            )
    missing = [reference[i].source[:60] for i, u in enumerate(used) if not u]
    if missing:
        problems.append(f"cells of the book not run: {missing}")
    return problems


# --------------------------------------------------------------------------
# The two launches
# --------------------------------------------------------------------------


def local_requirement(root: Path, commit: str) -> str:
    """The install cell's requirement, pointed at the checkout ``root``."""
    return f"whydeep @ git+file://{root.as_posix()}@{commit}"


def _notebooks_module(root: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        f"_whydeep_notebooks_{abs(hash(root))}", root / "tools" / "notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def colab_notebooks(build: Path, out: Path, root: Path = ROOT) -> dict[str, Path]:
    """The published notebooks of ``build``, installing from ``root`` at HEAD."""
    notebooks = _notebooks_module(root)
    config = notebooks.load_config(root)
    commit = notebooks.head_commit(root)
    written = notebooks.write_notebooks(
        build,
        out,
        config,
        commit,
        root=root,
        requirement=local_requirement(root, commit),
    )
    pages = notebooks.executed_pages(build)
    return {page: out / path for page, path in zip(pages, written, strict=True)}


def colab(
    build: Path = ROOT / "_build",
    root: Path = ROOT,
    pages: list[str] | None = None,
    widgets: bool = True,
) -> list[Run]:
    """Run the published notebooks as a Colab reader does (see the module)."""
    with tempfile.TemporaryDirectory(prefix="whydeep-colab-") as tmp:
        tmp = Path(tmp)
        published = colab_notebooks(build, tmp / "published", root)
        env = offline_environment(tmp / "home")
        (tmp / "home").mkdir()
        runs = []
        try:
            for page, path in published.items():
                if pages is not None and page not in pages:
                    continue
                uninstall_package(env)
                content = tmp / "content" / page.replace("/", "-")
                content.mkdir(parents=True)  # an empty folder, like Colab's /content
                notebook = nbformat.read(path, as_version=4)
                runs.append(
                    execute(
                        notebook,
                        page,
                        content,
                        env,
                        declared_only=True,
                        widgets=widgets,
                    )
                )
        finally:
            uninstall_package(env)
    return runs


def binder(root: Path = ROOT, pages: list[str] | None = None) -> list[Run]:
    """Build a Binder session's checkout with postBuild and run its notebooks."""
    with tempfile.TemporaryDirectory(prefix="whydeep-binder-") as tmp:
        tmp = Path(tmp)
        env = offline_environment(tmp / "home")
        (tmp / "home").mkdir()
        repo = tmp / "repo"
        subprocess.run(
            ["git", "clone", "--quiet", "--no-hardlinks", root.as_posix(), str(repo)],
            check=True,
            env=env,
        )
        notebooks = _notebooks_module(repo)
        config = notebooks.load_config(repo)
        runs = []
        try:
            uninstall_package(env)
            subprocess.run(
                ["bash", str(repo / "binder" / "postBuild")],
                cwd=repo,
                check=True,
                env=env,
                capture_output=True,
                text=True,
            )
            for page in notebooks.executable_pages(repo):
                if pages is not None and page not in pages:
                    continue
                path = repo / notebooks.binder_path(config, page)
                notebook = nbformat.read(path, as_version=4)
                runs.append(
                    execute(notebook, page, path.parent, env, declared_only=False)
                )
        finally:
            uninstall_package(env)
    return runs


def hosted(published: Path, out: Path) -> int:
    """Run every published notebook under ``published`` in *this* Python's own
    kernel (the weekly job runs it inside Colab's runtime image, with the
    network): the install cell installs from GitHub, then the outputs are
    compared with the ones the notebook carries (the book's). Writes
    ``out/summary.md``; returns the number of failing notebooks."""
    out.mkdir(parents=True, exist_ok=True)
    lines, failed = [], 0
    for path in sorted(published.rglob("*.ipynb")):
        page = path.relative_to(published).with_suffix("").as_posix()
        notebook = nbformat.read(path, as_version=4)
        with tempfile.TemporaryDirectory(prefix="whydeep-hosted-") as cwd:
            try:
                run = execute(
                    notebook, page, Path(cwd), dict(os.environ), declared_only=None
                )
                problems = compare(notebook, run.notebook)
                seconds = f"{run.seconds:.0f} s"
            except Exception as error:  # a failing cell: report it, go on
                problems, seconds = (
                    [f"{type(error).__name__}: {str(error)[-1500:]}"],
                    "-",
                )
        failed += bool(problems)
        lines.append(
            f"- `{page}` ({seconds}): " + ("ok" if not problems else "**fails**")
        )
        lines += [f"  ```\n  {p}\n  ```" for p in problems]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "what", choices=["setup", "colab", "binder", "compare", "hosted"]
    )
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--force", action="store_true", help="setup: remake it")
    args = parser.parse_args(argv)
    if args.what == "compare":
        book, run = (nbformat.read(f, as_version=4) for f in args.files)
        problems = compare(book, run)
        print("\n".join(problems) or "same text outputs")
        return 1 if problems else 0
    if args.what == "hosted":
        published, out = args.files
        return 1 if hosted(published, out) else 0
    if args.what == "setup":
        seconds = setup(force=args.force)
        print(
            f"rehearsal environment {VENV}: "
            + (f"made in {seconds:.0f} s" if seconds else "current")
        )
        return 0
    setup()
    runs = colab() if args.what == "colab" else binder()
    failed = 0
    for run in runs:
        book = _notebooks_module(ROOT).read_executed(ROOT / "_build", run.page)
        problems = compare(book, run.notebook)
        failed += bool(problems)
        print(
            f"{run.page:<24} {run.seconds:6.1f} s  {'ok' if not problems else 'DIFFERS'}"
        )
        for problem in problems:
            print("   ", problem)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
