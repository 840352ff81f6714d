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
import io
import itertools
import json
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
    """Apply the book's figure style to Matplotlib (nothing is downloaded)."""
    import matplotlib.pyplot as plt

    plt.style.use(style_path())


def colors() -> list[str]:
    """The style's colour cycle, in order."""
    with mpl.rc_context(fname=style_path()):
        return list(mpl.rcParams["axes.prop_cycle"].by_key()["color"])


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


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
    uid = "whydeep-slider-" + hashlib.sha1("".join(frames).encode()).hexdigest()[:12]
    sizes = [len(params[n]) for n in names]
    first = sum(i * s for i, s in zip(start, _strides(sizes), strict=True))
    controls = "".join(
        f'<label style="display:block;margin:0.2em 0">{html.escape(str(n))} '
        f'<input type="range" min="0" max="{len(params[n]) - 1}" value="{i}" step="1" '
        f'data-param="{k}" style="vertical-align:middle;width:50%"> '
        f"<output>{html.escape(labels[k][i])}</output></label>"
        for k, (n, i) in enumerate(zip(names, start, strict=True))
    )
    script = (
        "(function(){"
        f'var root=document.getElementById("{uid}");'
        f"var frames={json.dumps(frames)};"
        f"var labels={json.dumps(labels)};"
        f"var strides={json.dumps(_strides(sizes))};"
        'var img=root.querySelector("img");'
        'var inputs=root.querySelectorAll("input");'
        "function update(){var k=0;inputs.forEach(function(el){"
        "var p=+el.dataset.param;k+=strides[p]*(+el.value);"
        "el.nextElementSibling.textContent=labels[p][+el.value];});"
        'img.src="data:image/png;base64,"+frames[k];}'
        'inputs.forEach(function(el){el.addEventListener("input",update);});'
        "})();"
    )
    body = (
        f'<div class="whydeep-slider" id="{uid}">'
        f'<img alt="interactive figure" style="max-width:100%;height:auto" '
        f'src="data:image/png;base64,{frames[first]}">'
        f"<div>{controls}</div><script>{script}</script></div>"
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
