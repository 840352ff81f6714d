"""pytest configuration for the whole repository.

`make test` runs the unit tests in tests/ and nbval over the executed pages in
_build/jupyter_execute in one pytest session; this file makes the re-executed
pages see the same environment as the build, and reports the two counts apart.
"""

from __future__ import annotations

import os

# The build sets WHYDEEP_BUILD=1 for its kernels (see _ext/whydeep_fresh.py);
# nbval's kernels inherit it from here, so interactive figures are embedded the
# same way as on the published page.
os.environ["WHYDEEP_BUILD"] = "1"


def _kind(report) -> str:
    return (
        "notebook cells" if ".ipynb" in report.nodeid.split("::")[0] else "unit tests"
    )


def pytest_terminal_summary(terminalreporter):
    counts: dict[tuple[str, str], int] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") not in ("call", "setup"):
                continue
            if outcome == "passed" and report.when != "call":
                continue
            key = (_kind(report), outcome)
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return
    terminalreporter.section("what was checked")
    for kind in ("unit tests", "notebook cells"):
        parts = [
            f"{counts[(kind, o)]} {o}"
            for o in ("passed", "failed", "error", "skipped")
            if counts.get((kind, o))
        ]
        terminalreporter.write_line(f"{kind}: {', '.join(parts) if parts else 'none'}")
