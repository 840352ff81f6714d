"""The book's figure style, and interactive figures that also work on a static page.

An interactive demo in a notebook usually needs a running kernel: move a slider,
Python recomputes. On the published web page there is no kernel, so
:func:`interactive` draws every slider position when the book is built and embeds
the frames with a small slider of HTML and JavaScript; with a live kernel
(Binder, Colab, a local Jupyter) it shows ``ipywidgets`` controls that
recompute instead.

Figure helpers, here and in the chapter modules, follow one rule: ``plot_*(ax, ...)``
draws on the axes it is given; a helper takes a ``fig`` instead only when it lays
out several panels itself. Callbacks of :func:`static_slider` and
:func:`interactive` receive the figure, since they may lay out panels.
"""

from __future__ import annotations

import base64
import hashlib
import html
import importlib
import io
import itertools
import json
import re
from collections.abc import Callable, Sequence
from importlib import resources

import matplotlib as mpl

from ._checks import check_int
from ._runtime import in_book_build

STYLE = "whydeep.mplstyle"


def style_path() -> str:
    """Path of the style sheet shipped inside the package."""
    return str(resources.files("whydeep").joinpath(STYLE))


def use_style() -> None:
    """Apply the book's figure style to Matplotlib (nothing is downloaded).

    In a notebook it also makes every figure display as a PNG drawn at twice the
    style's resolution and shown at its size (sharp on high-density screens),
    with a text description of the figure (:func:`describe`) stored in the PNG,
    where the book's build finds it for the image's alt text.
    """
    import matplotlib.pyplot as plt

    plt.style.use(style_path())
    _display_figures_sharp()


_PLAIN = str.maketrans("", "", "${}\\")

#: Resolution of the PNGs relative to the figure's own dpi (2: "retina").
PIXEL_RATIO = 2


def describe(fig) -> str:
    """A one-line text description of ``fig`` for readers who cannot see it.

    Uses, in order: a description set with ``fig.set_label("...")`` (a label
    that does not start with an underscore), else the figure's title and, for
    each panel, its own description (``ax.set_label("...")``), title and axis
    labels. Returns "" for a figure without any text.
    """
    label = fig.get_label()
    if label and not label.startswith("_"):
        return label
    parts = []
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text().strip():
        parts.append(suptitle.get_text().strip())
    panels = [ax for ax in fig.axes if ax.get_visible()]
    for ax in panels:
        bits = []
        own = ax.get_label()
        if own and not own.startswith("_"):
            bits.append(own)
        title = " ".join(
            t for t in (ax.get_title(loc) for loc in ("left", "center", "right")) if t
        )
        if title:
            bits.append(title)
        xlabel, ylabel = ax.get_xlabel(), ax.get_ylabel()
        if xlabel and ylabel:
            bits.append(f"{ylabel} against {xlabel}")
        elif xlabel or ylabel:
            bits.append(xlabel or ylabel)
        if bits:
            parts.append(": ".join(bits))
    if not parts:
        return ""
    # Mathtext as plain words: "$\\sigma_w^2$" -> "sigma_w^2".
    parts = [re.sub(r"\\([A-Za-z]+)", r"\1", p).translate(_PLAIN) for p in parts]
    prefix = f"Figure with {len(panels)} panels. " if len(panels) > 1 else "Figure. "
    return prefix + "; ".join(dict.fromkeys(parts)) + "."


def png_bytes(fig, *, ratio: int = PIXEL_RATIO, tight: bool = True) -> bytes:
    """``fig`` as PNG bytes at ``ratio`` times its dpi, described (:func:`describe`);
    ``tight`` crops the figure to what it draws (as notebooks show figures)."""
    ratio = check_int("ratio", ratio, minimum=1)
    buf = io.BytesIO()
    metadata = {"Description": describe(fig) or None}
    fig.savefig(
        buf,
        format="png",
        dpi=fig.dpi * ratio,
        bbox_inches="tight" if tight else None,
        metadata=metadata,
    )
    return buf.getvalue()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height in pixels of PNG ``data``."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("data must be a PNG image, got other bytes")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _figure_png(fig):
    data = png_bytes(fig)
    width, height = png_size(data)
    shown = {"width": width // PIXEL_RATIO, "height": height // PIXEL_RATIO}
    return data, shown


def _display_figures_sharp() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    from matplotlib.figure import Figure

    def apply(*_):
        formatters = shell.display_formatter.formatters
        if formatters["image/png"].type_printers.get(Figure) is _figure_png:
            return
        for kind in ("image/svg+xml", "image/jpeg", "application/pdf"):
            formatters[kind].pop(Figure, None)
        formatters["image/png"].for_type(Figure, _figure_png)

    # Loading the inline backend registers its own formatter, at once or after
    # the cell that loads it: resolve the backend now and apply again after
    # every cell, so this one stays.
    backend = mpl.get_backend()
    if backend.startswith("module://"):
        importlib.import_module(backend.removeprefix("module://"))
    apply()
    if apply.__qualname__ not in {
        getattr(f, "__qualname__", "") for f in shell.events.callbacks["post_run_cell"]
    }:
        shell.events.register("post_run_cell", apply)


def colors() -> list[str]:
    """The style's colour cycle, in order."""
    with mpl.rc_context(fname=style_path()):
        return list(mpl.rcParams["axes.prop_cycle"].by_key()["color"])


def _png(fig) -> tuple[str, tuple[int, int], str]:
    """A frame: the PNG as a data URI, its shown size, its description."""
    import matplotlib.pyplot as plt

    data = png_bytes(fig, tight=False)  # every frame the same size
    width, height = png_size(data)
    text = describe(fig)
    plt.close(fig)
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return uri, (width // PIXEL_RATIO, height // PIXEL_RATIO), text


def _check_slider_values(params: dict) -> dict[str, list]:
    if not isinstance(params, dict) or not params:
        raise ValueError(
            f"params must be a non-empty dict of name -> values, got {params!r}"
        )
    out = {}
    for name, values in params.items():
        values = list(values)
        if not values:
            raise ValueError(f"params[{name!r}] must list at least one value, got []")
        out[name] = values
    return out


def static_slider(
    draw: Callable[..., None],
    params: dict[str, Sequence],
    *,
    figsize: tuple[float, float] | None = None,
    initial: dict | None = None,
    fmt: Callable[[object], str] = str,
):
    """Draw ``draw(fig, **values)`` for every combination of ``params`` and embed
    the frames with one HTML range slider per parameter.

    Parameters
    ----------
    draw : callable
        ``draw(fig, **values)`` draws one frame on an empty figure.
    params : dict
        Parameter name -> sequence of values, one slider each.
    figsize : (float, float), optional
        Figure size in inches; the style's default when omitted.
    initial : dict, optional
        Parameter name -> value shown first (default: the first value of each).
    fmt : callable
        Formats a value for the slider's label.

    Returns
    -------
    IPython.display.HTML
        Self-contained HTML (frames as PNG data) that works without a kernel.
    """
    import matplotlib.pyplot as plt
    from IPython.display import HTML

    params = _check_slider_values(params)
    initial = dict(initial or {})
    for name, value in initial.items():
        if name not in params or value not in params[name]:
            raise ValueError(
                f"initial[{name!r}] must be one of params[{name!r}], got {value!r}"
            )
    names = list(params)
    frames = []
    for combo in itertools.product(*params.values()):
        fig = plt.figure(figsize=figsize)
        draw(fig, **dict(zip(names, combo, strict=True)))
        frames.append(_png(fig))
    start = [params[n].index(initial[n]) if n in initial else 0 for n in names]
    labels = [[fmt(v) for v in params[n]] for n in names]
    uris = [uri for uri, _, _ in frames]
    uid = "whydeep-slider-" + hashlib.sha1("".join(uris).encode()).hexdigest()[:12]
    sizes = [len(params[n]) for n in names]
    first = sum(i * s for i, s in zip(start, _strides(sizes), strict=True))
    (width, height), text = frames[first][1], frames[first][2]
    alt = "Interactive figure, one frame per slider position. " + (
        text
        or "Frame for "
        + ", ".join(
            f"{n} = {labels[k][i]}"
            for k, (n, i) in enumerate(zip(names, start, strict=True))
        )
    )
    controls = "".join(
        f'<label style="display:block;margin:0.2em 0">{html.escape(str(n))} '
        f'<input type="range" min="0" max="{len(params[n]) - 1}" value="{i}" step="1" '
        f'data-param="{k}" style="vertical-align:middle;width:50%"> '
        f"<output>{html.escape(labels[k][i])}</output></label>"
        for k, (n, i) in enumerate(zip(names, start, strict=True))
    )
    # The frames are data URIs in the notebook; the book's build writes each
    # one to a file and puts its address in their place (_ext/whydeep_reading.py).
    script = (
        "(function(){"
        f'var root=document.getElementById("{uid}");'
        'var frames=JSON.parse(root.querySelector(".whydeep-slider-frames")'
        ".textContent);"
        f"var labels={json.dumps(labels)};"
        f"var strides={json.dumps(_strides(sizes))};"
        'var img=root.querySelector("img");'
        'var inputs=root.querySelectorAll("input");'
        "function update(){var k=0;inputs.forEach(function(el){"
        "var p=+el.dataset.param;k+=strides[p]*(+el.value);"
        "el.nextElementSibling.textContent=labels[p][+el.value];});"
        "img.src=frames[k];}"
        'inputs.forEach(function(el){el.addEventListener("input",update);});'
        "})();"
    )
    body = (
        f'<div class="whydeep-slider" id="{uid}">'
        f'<img alt="{html.escape(alt)}" width="{width}" height="{height}" '
        'loading="lazy" style="max-width:100%;height:auto" '
        f'src="{uris[first]}">'
        f"<div>{controls}</div>"
        '<script type="application/json" class="whydeep-slider-frames">'
        f"{json.dumps(uris)}</script>"
        f"<script>{script}</script></div>"
    )
    return HTML(body)


def _strides(sizes: list[int]) -> list[int]:
    strides, step = [], 1
    for size in reversed(sizes):
        strides.append(step)
        step *= size
    return list(reversed(strides))


def interactive(
    draw: Callable[..., None],
    params: dict[str, Sequence],
    *,
    figsize: tuple[float, float] | None = None,
    initial: dict | None = None,
    fmt: Callable[[object], str] = str,
):
    """A figure with a slider per parameter that works with or without a kernel.

    While the book is built (:func:`in_book_build`), or when ``ipywidgets`` is
    missing, returns :func:`static_slider`'s precomputed frames. Otherwise shows
    live ``ipywidgets`` sliders over the same values that call ``draw`` again on
    every move, and returns the widget.
    """
    params = _check_slider_values(params)
    try:
        import ipywidgets as widgets
    except ImportError:
        widgets = None
    if in_book_build() or widgets is None:
        return static_slider(draw, params, figsize=figsize, initial=initial, fmt=fmt)

    import matplotlib.pyplot as plt

    initial = dict(initial or {})
    sliders = {
        name: widgets.SelectionSlider(
            options=[(fmt(v), v) for v in values],
            value=initial.get(name, values[0]),
            description=str(name),
            continuous_update=False,
        )
        for name, values in params.items()
    }

    def show(**values):
        fig = plt.figure(figsize=figsize)
        draw(fig, **values)
        plt.show()

    return widgets.interact(show, **sliders)


def power_law_fit(x, y) -> tuple[float, float]:
    """Least-squares line through ``log y`` against ``log x``: the straight line of
    a log-log plot.

    Returns
    -------
    exponent, prefactor : float
        ``y ≈ prefactor * x**exponent``.
    """
    import numpy as np

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(
            f"x and y must be 1-D of equal length >= 2, got shapes {x.shape}, {y.shape}"
        )
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError(
            f"x and y must be positive for a log-log fit, got x {x.tolist()} "
            f"and y {y.tolist()}"
        )
    exponent, log_prefactor = np.polyfit(np.log(x), np.log(y), 1)
    return float(exponent), float(np.exp(log_prefactor))


def small_multiples(n: int, *, ncols: int = 4, panel: float = 2.2, **subplot_kw):
    """A figure with ``n`` square panels in rows of ``ncols``; returns ``(fig, axes)``
    with the unused panels removed and ``axes`` flattened to length ``n``."""
    import matplotlib.pyplot as plt

    n = check_int("n", n, minimum=1)
    ncols = check_int("ncols", ncols, minimum=1)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel * ncols, panel * nrows),
        squeeze=False,
        **subplot_kw,
    )
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.remove()
    return fig, list(flat[:n])


def plot_network(ax, sizes, *, max_units: int = 8, color: str | None = None) -> None:
    """Draw a fully connected network with layer sizes ``sizes`` on ``ax``.

    Layers wider than ``max_units`` are drawn with ``max_units`` units and
    labelled with their true size.
    """
    sizes = [check_int("sizes[i]", s, minimum=1) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least 2 layers, got {sizes!r}")
    max_units = check_int("max_units", max_units, minimum=1)
    color = color or colors()[0]
    shown = [min(s, max_units) for s in sizes]
    tallest = max(shown)

    def ys(n):
        return [(tallest - 1) / 2 - (n - 1) / 2 + i for i in range(n)]

    for layer, (n_a, n_b) in enumerate(itertools.pairwise(shown)):
        for ya in ys(n_a):
            for yb in ys(n_b):
                ax.plot([layer, layer + 1], [ya, yb], color="0.75", lw=0.8, zorder=1)
    for layer, (n, size) in enumerate(zip(shown, sizes, strict=True)):
        ax.scatter([layer] * n, ys(n), s=260, color=color, zorder=2, edgecolor="white")
        ax.text(layer, -1.1, str(size), ha="center", va="top")
    ax.set_xlim(-0.5, len(sizes) - 0.5)
    ax.set_ylim(-1.9, tallest - 0.2)
    ax.axis("off")
    ax.set_label(
        "diagram of a fully connected network with layers of "
        + ", ".join(map(str, sizes))
        + " units"
    )
