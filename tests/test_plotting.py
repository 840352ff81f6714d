"""Tests of whydeep.plotting: the shipped style and static/live interactive figures."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from whydeep import _runtime, plotting


def test_style_ships_with_the_package_and_needs_no_network():
    path = Path(plotting.style_path())
    assert path.is_file()
    assert "http" not in path.read_text()
    plotting.use_style()
    assert matplotlib.rcParams["figure.facecolor"] in ("white", (1.0, 1.0, 1.0, 1.0))
    assert matplotlib.rcParams["savefig.transparent"] is False


def test_colors_are_the_style_cycle():
    assert plotting.colors()[:2] == ["#0072B2", "#D55E00"]


def _draw(fig, a, b="x"):
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, a])
    ax.set_title(str(b))


def test_static_slider_embeds_every_frame_and_one_control_per_parameter(monkeypatch):
    monkeypatch.setenv(_runtime.BUILD_ENV, "1")
    html = plotting.interactive(_draw, {"a": [1, 2, 3], "b": ["p", "q"]}).data
    assert html.count('type="range"') == 2
    frames = re.search(
        r'<script type="application/json" class="whydeep-slider-frames">(.*?)</script>',
        html,
    ).group(1)
    uris = json.loads(frames)
    # the style's figures are wider than a phone's column: each frame has a
    # phone rendering too
    assert len(uris["wide"]) == len(uris["phone"]) == 6
    assert all(
        u.startswith("data:image/png;base64,iVBOR")
        for u in uris["wide"] + uris["phone"]
    )
    assert (
        f'<source media="{plotting.PHONE_MEDIA}" srcset="{uris["phone"][0]} 2x"' in html
    )
    assert "<script>" in html and 'loading="lazy"' in html
    assert plt.get_fignums() == []  # every frame's figure was closed


def test_slider_frames_are_sharp_and_shown_at_half_their_pixels(monkeypatch):
    html = plotting.static_slider(_draw, {"a": [1, 2]}, figsize=(4, 3)).data
    frames = json.loads(
        re.search(r'class="whydeep-slider-frames">(.*?)</script>', html).group(1)
    )
    uri = frames["wide"][0]
    data = base64.b64decode(uri.split(",", 1)[1])
    dpi = matplotlib.rcParams["figure.dpi"]
    width, height = plotting.png_size(data)
    assert (width, height) == (round(4 * dpi * 2), round(3 * dpi * 2))
    assert f'width="{width // 2}" height="{height // 2}"' in html
    # the alt text says what the frame shows, not where its file is
    alt = re.search(r'<img alt="([^"]*)"', html).group(1)
    assert "Interactive figure" in alt and "x" in alt
    # a figure that fits a phone's column needs no phone rendering
    narrow = plotting.static_slider(_draw, {"a": [1, 2]}, figsize=(3, 2)).data
    assert '"phone": null' in narrow and "<source" not in narrow


def _two_panels():
    fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
    for ax in axes:
        ax.plot([0, 1], [0, 1])
        ax.set_xlabel("x")
    axes[0].set_ylabel("y")
    return fig, axes


def test_phone_rendering_stacks_the_panels_in_the_phone_column():
    fig, axes = _two_panels()
    before = plotting.png_bytes(fig)
    phone = plotting.phone_figure(fig)
    # a copy, as wide as a phone's column, panels one above the other, text
    # at the size it was set, tick labels a shared axis had hidden shown again
    assert phone is not fig and plt.get_fignums() == [fig.number]
    assert phone.get_size_inches()[0] == plotting.PHONE_WIDTH
    phone.canvas.draw()
    (top, bottom) = [ax.get_position() for ax in phone.axes]
    assert top.y0 > bottom.y1 and abs(top.x0 - bottom.x0) < 0.05
    assert all(t.label1.get_visible() for t in phone.axes[1].yaxis.get_major_ticks())
    size = {t.get_fontsize() for t in phone.axes[0].get_xticklabels()}
    assert size == {t.get_fontsize() for t in axes[0].get_xticklabels()}
    # the figure itself is left as it was
    assert plotting.png_bytes(fig) == before
    plt.close(phone)
    plt.close(fig)


def test_phone_rendering_travels_inside_the_figure_png():
    fig, _ = _two_panels()
    wide = plotting.png_bytes(fig)
    phone = plotting.phone_png(fig)
    plt.close(fig)
    width, _ = plotting.png_size(phone)
    # the tight crop keeps a margin of 0.1 inch on each side
    assert width <= 2 * (plotting.PHONE_WIDTH + 0.3) * matplotlib.rcParams["figure.dpi"]
    both = plotting.with_phone(wide, phone)
    assert plotting.png_size(both) == plotting.png_size(wide)
    assert plotting.split_phone(both) == (wide, phone)
    assert plotting.split_phone(wide) == (wide, None)
    with pytest.raises(ValueError, match="phone"):
        plotting.with_phone(wide, b"not a png")
    small = plt.figure(figsize=(3, 2))
    assert plotting.phone_png(small) is None  # it fits the phone already
    plt.close(small)


def test_describe_names_the_title_panels_and_axes():
    fig, axes = plt.subplots(1, 2)
    fig.suptitle("Two views")
    axes[0].set(title="left", xlabel="depth L", ylabel="pieces")
    axes[1].set(xlabel="width n")
    text = plotting.describe(fig)
    assert text.startswith("Figure with 2 panels. Two views;")
    assert "left: pieces against depth L" in text and "width n" in text
    fig.set_label("A hand-written description.")
    assert plotting.describe(fig) == "A hand-written description."
    plt.close(fig)
    fig, ax = plt.subplots()
    plotting.plot_network(ax, [4, 3, 1])
    assert "network with layers of 4, 3, 1 units" in plotting.describe(fig)
    plt.close(fig)
    empty = plt.figure()
    assert plotting.describe(empty) == ""
    plt.close(empty)


def test_png_carries_its_description_and_twice_the_pixels():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_ext"))
    from whydeep_reading import png_text

    fig = plt.figure(figsize=(2, 1), dpi=50)
    fig.add_subplot().set_title("a title")
    data = plotting.png_bytes(fig, tight=False)
    plt.close(fig)
    assert plotting.png_size(data) == (200, 100)
    assert png_text(data)["Description"] == "Figure. a title."
    with pytest.raises(ValueError, match="data"):
        plotting.png_size(b"GIF89a")


def test_static_slider_is_deterministic():
    first = plotting.static_slider(_draw, {"a": [1, 2]}).data
    second = plotting.static_slider(_draw, {"a": [1, 2]}).data
    assert first == second


def test_initial_value_selects_the_first_frame_shown():
    html = plotting.static_slider(_draw, {"a": [1, 2, 3]}, initial={"a": 3}).data
    assert 'value="2"' in html


def test_live_kernel_gets_widgets(monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    monkeypatch.delenv(_runtime.BUILD_ENV, raising=False)
    shown = plotting.interactive(_draw, {"a": [1, 2]})
    assert isinstance(shown.widget, widgets.interactive)
    plt.close("all")


def test_log_slope_recovers_a_power_law():
    x = [1, 10, 100, 1000]
    assert plotting.power_law_fit(x, [3 * v**-1.5 for v in x]) == pytest.approx(
        (-1.5, 3)
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plotting.static_slider(_draw, {}), "params"),
        (lambda: plotting.static_slider(_draw, {"a": []}), "params"),
        (
            lambda: plotting.static_slider(_draw, {"a": [1]}, initial={"a": 5}),
            "initial",
        ),
        (lambda: plotting.power_law_fit([1, 2], [1, -1]), "positive"),
        (lambda: plotting.power_law_fit([1], [1]), "length"),
        (lambda: plotting.small_multiples(0), "n"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_small_multiples_keeps_exactly_n_panels():
    fig, axes = plotting.small_multiples(5, ncols=3)
    assert len(axes) == 5
    assert len(fig.axes) == 5
    plt.close(fig)


def test_plot_network_draws_one_dot_per_shown_unit():
    fig, ax = plt.subplots()
    plotting.plot_network(ax, [4, 3, 1])
    dots = sum(len(c.get_offsets()) for c in ax.collections)
    assert dots == 4 + 3 + 1
    assert [t.get_text() for t in ax.texts] == ["4", "3", "1"]
    plt.close(fig)
    with pytest.raises(ValueError, match="sizes"):
        plotting.plot_network(ax, [3])


def test_no_figure_text_is_set_below_the_style_smallest_size():
    # the browser test checks how large the style's smallest text appears on
    # a page; a figure that sets a smaller size by hand would escape it
    style = Path(plotting.style_path()).read_text()
    smallest = min(
        float(v)
        for v in re.findall(r"^\w+\.(?:labelsize|fontsize): ([\d.]+)", style, re.M)
    )
    root = Path(__file__).resolve().parents[1]
    sources = [*root.glob("book/*.md"), *root.glob("src/whydeep/*.py")]
    small = [
        f"{path.name}: {match.group(0)}"
        for path in sources
        for match in re.finditer(r"(?:fontsize|labelsize)=([\d.]+)", path.read_text())
        if float(match.group(1)) < smallest
    ]
    assert smallest >= 10.5 and not small, small


def test_phone_rendering_moves_crowding_legends_under_their_panel():
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    for ax in axes:
        for k in range(6):
            ax.plot([0, 1], [k, k + 1], label=f"a long legend label {k}")
    axes[0].legend(loc="upper left")
    fig.legend(*axes[1].get_legend_handles_labels(), loc="lower center", ncols=6)
    axes[1].set_title("a title much too long for a phone's narrow figure to hold")
    phone = plotting.phone_figure(fig)
    plt.close(fig)
    phone.draw_without_rendering()
    renderer = phone.canvas.get_renderer()
    (top, bottom) = plotting._panels(phone)
    legend = top.get_legend().get_window_extent(renderer)
    # under its panel and its axis labels, whole, inside the figure
    assert legend.y1 <= top.xaxis.get_tightbbox(renderer).y0 + 1
    assert legend.width <= phone.bbox.width
    # the figure legend keeps every entry and fits, under the figure
    (figure_legend,) = phone.legends
    assert len(figure_legend.get_texts()) == 6
    assert figure_legend.get_window_extent(renderer).width <= phone.bbox.width
    assert bottom.title.get_wrap()
    plt.close(phone)


def test_phone_rendering_of_a_figure_without_a_grid_only_narrows_it():
    fig = plt.figure(figsize=(8, 3))
    fig.add_axes([0.1, 0.1, 0.8, 0.8]).plot([0, 1])
    phone = plotting.phone_figure(fig)
    plt.close(fig)
    width, height = phone.get_size_inches()
    assert width == plotting.PHONE_WIDTH and height >= 2.4
    plt.close(phone)


def test_the_style_sheet_shows_phone_renderings_below_the_same_width():
    css = (Path(__file__).resolve().parents[1] / "_static" / "whydeep.css").read_text()
    block = css[css.index("picture img") - 200 : css.index("picture img")]
    assert f"@media {plotting.PHONE_MEDIA}" in block


def test_png_chunks_walk_the_png():
    fig = plt.figure(figsize=(2, 1))
    data = plotting.png_bytes(fig)
    plt.close(fig)
    kinds = [kind for kind, _, _ in plotting.png_chunks(data)]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    assert list(plotting.png_chunks(b"GIF89a")) == []
