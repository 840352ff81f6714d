"""What a reader downloads to open a page of the built book (``make book``).

Each page's HTML is at most 300 KiB and, with the images it shows when opened,
at most 2 MiB: interactive figures keep their frames in files beside the page
(loaded when the slider reaches them), not inside the HTML. The weights are
those ``make bench`` reports (tools/bench.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("WHYDEEP_BUILD_DIR", ROOT / "_build")) / "html"
sys.path.insert(0, str(ROOT / "tools"))
import bench  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (HTML / "book").is_dir(), reason=f"no built book in {HTML}: run make book"
)


def _pages() -> list[str]:
    if not (HTML / "book").is_dir():
        return []
    return sorted(f"book/{p.stem}" for p in (HTML / "book").glob("*.html"))


@pytest.mark.parametrize("page", _pages())
def test_page_weight_within_limits(page):
    weight = bench.page_weight(HTML, page)
    assert weight["html"] <= bench.HTML_LIMIT, (
        f"{page}: HTML is {weight['html'] / 1024:.0f} KiB "
        f"(limit {bench.HTML_LIMIT // 1024} KiB)"
    )
    assert weight["total"] <= bench.TOTAL_LIMIT, (
        f"{page}: HTML with its images is {weight['total'] / 1024:.0f} KiB "
        f"(limit {bench.TOTAL_LIMIT // 1024} KiB)"
    )


def test_no_image_is_inlined_in_a_page():
    for page in _pages():
        text = (HTML / f"{page}.html").read_text(encoding="utf-8")
        assert "data:image/png;base64," not in text, f"{page} inlines an image"
