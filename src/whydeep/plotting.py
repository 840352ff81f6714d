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
import functools
import hashlib
import html
import importlib
import io
import itertools
import json
import math
import re
import warnings
import zlib
from collections.abc import Callable, Sequence
from importlib import resources

import matplotlib as mpl

from ._checks import check_float, check_int
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
    fig.savefig(
        buf,
        format="png",
        dpi=fig.dpi * ratio,
        bbox_inches="tight" if tight else None,
        metadata={"Description": describe(fig) or None},
    )
    return buf.getvalue()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height in pixels of PNG ``data``."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("data must be a PNG image, got other bytes")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


#: Width in inches of a figure's phone rendering: at the style's 100 dpi, the
#: CSS pixels of the text column of a phone 390 px wide, so that the phone
#: shows the figure at its natural size and its text at the size it was set.
PHONE_WIDTH = 3.2
#: Below this many CSS pixels of window width the book shows phone renderings.
PHONE_MEDIA = "(max-width: 576px)"
#: The PNG chunk that carries a figure's phone rendering inside its PNG
#: (ancillary, private, safe to copy: viewers that do not know it skip it).
PHONE_CHUNK = b"wdPh"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (
        len(body).to_bytes(4, "big")
        + kind
        + body
        + zlib.crc32(kind + body).to_bytes(4, "big")
    )


def with_phone(data: bytes, phone: bytes) -> bytes:
    """PNG ``data`` with the PNG ``phone`` stored in a :data:`PHONE_CHUNK` chunk."""
    for name, png in (("data", data), ("phone", phone)):
        if not png.startswith(b"\x89PNG") or not png.endswith(_chunk(b"IEND", b"")):
            raise ValueError(f"{name} must be a whole PNG image, got other bytes")
    end = len(data) - 12
    return data[:end] + _chunk(PHONE_CHUNK, phone) + data[end:]


def png_chunks(data: bytes):
    """The chunks of PNG ``data`` in order, as ``(kind, start, end)``: the chunk
    (length, kind, body and checksum) is ``data[start:end]`` and its body
    ``data[start + 8 : end - 4]``. Nothing for bytes that are not a PNG."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        yield data[pos + 4 : pos + 8], pos, pos + 12 + length
        pos += 12 + length


def split_phone(data: bytes) -> tuple[bytes, bytes | None]:
    """``data`` without its phone rendering, and the rendering (``None`` if none)."""
    png_size(data)
    for kind, start, end in png_chunks(data):
        if kind == PHONE_CHUNK:
            return data[:start] + data[end:], data[start + 8 : end - 4]
    return data, None


def _panels(fig):
    return [
        ax for ax in fig.axes if ax.get_visible() and ax.get_subplotspec() is not None
    ]


def phone_figure(fig, width: float = PHONE_WIDTH):
    """A copy of ``fig`` laid out for a phone's column, or ``None`` if it cannot
    be copied.

    The copy is ``width`` inches wide, with the same text sizes; panels that
    stood side by side are stacked, one to a row (two to a row from six
    panels on, if their titles are short), each keeping its shape unless that
    would make it lower than 2.4 inches. Tick labels hidden because neighbours
    shared an axis are shown again, since the neighbour may now be far away.
    A legend that would cover much of its narrower panel, or not fit in it,
    moves under the panel, and titles and labels wider than the figure break
    over lines (:func:`_legends_for_phone`).
    """
    import pickle

    import matplotlib.pyplot as plt

    width = check_float("width", width, positive=True)
    current = plt.get_fignums() and plt.gcf()
    try:
        copy = pickle.loads(pickle.dumps(fig))
    except Exception:  # a figure holding something unpicklable: no phone copy
        return None
    # unpickling registers the copy with pyplot: leave pyplot as it was
    plt.close(copy)
    if current and plt.fignum_exists(current.number):
        plt.figure(current.number)
    specs = {ax: ax.get_subplotspec().get_topmost_subplotspec() for ax in _panels(copy)}
    grids = {spec.get_gridspec() for spec in specs.values()}
    old_w, old_h = copy.get_size_inches()
    if len(grids) != 1:  # no grid, or several: only narrower
        scale = width / old_w
        copy.set_size_inches(width, max(old_h * scale, min(old_h, 2.4)))
    else:
        n_rows, n_cols = grids.pop().get_geometry()
        panel_w, panel_h = old_w / n_cols, old_h / n_rows
        top = sorted(
            specs, key=lambda ax: (specs[ax].rowspan.start, specs[ax].colspan.start)
        )
        short = all(len(ax.get_title().translate(_PLAIN)) <= 16 for ax in top)
        cols = 2 if len(top) >= 6 and n_cols >= 2 and short else 1
        cells, row, col = [], 0, 0
        for ax in top:
            wide = len(specs[ax].colspan) > 1 and cols > 1
            if wide and col:
                row, col = row + 1, 0
            cells.append((row, slice(0, cols) if wide else col))
            row, col = (row + 1, 0) if wide or col + 1 == cols else (row, col + 1)
        n_new = row + (col > 0)
        new_h = max(panel_h * (width / cols) / panel_w, min(panel_h, 2.4))
        copy.set_size_inches(width, new_h * n_new)
        layout = copy.add_gridspec(n_new, cols)
        for ax, (r, c) in zip(top, cells, strict=True):
            ax.set_subplotspec(layout[r, c])
            ax.tick_params(labelbottom=True, labelleft=True)
    _legends_for_phone(copy)
    return copy


def _legends_for_phone(fig) -> None:
    """Move legends that crowd a phone layout out of the way, in place, and let
    titles and axis labels break over lines where they are wider than the figure.

    A panel's legend that covers more than an eighth of its panel, or is
    wider than it, goes under the panel (below its axis label), in two
    columns if they fit, else one; a figure legend goes under the figure. The
    figure grows by the height the moved legends take.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.transforms import ScaledTranslation

    # an unpickled figure has a bare canvas: give it one that draws
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    # titles and axis labels longer than the narrow figure break over lines
    texts = [getattr(fig, f"_sup{k}", None) for k in ("title", "xlabel", "ylabel")]
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title]
        texts += [ax.xaxis.label, ax.yaxis.label]
    for text in texts:
        if text is not None:
            text.set_wrap(True)
    with warnings.catch_warnings():  # a layout squeezed before legends move
        warnings.simplefilter("ignore")
        fig.draw_without_rendering()  # lays the figure out: sizes are known
    renderer = fig.canvas.get_renderer()

    def relay(old, make) -> float:
        """``old``'s entries laid by ``make`` in two columns if they fit across
        the figure, else one; returns the new legend's height in inches."""
        handles, labels = old.legend_handles, [t.get_text() for t in old.get_texts()]
        for ncols in (2, 1):
            new = make(handles, labels, ncols=min(ncols, len(labels)))
            box = new.get_window_extent(renderer)
            # one column is the narrowest there is
            if box.width <= fig.bbox.width * 0.95 or ncols == 1:
                return box.height / fig.dpi
            new.remove()

    grow = 0.0
    for ax in _panels(fig):
        old = ax.get_legend()
        if old is None or not old.get_visible():
            continue
        box, area = old.get_window_extent(renderer), ax.bbox
        overlap = max(0.0, min(box.x1, area.x1) - max(box.x0, area.x0)) * max(
            0.0, min(box.y1, area.y1) - max(box.y0, area.y0)
        )
        if overlap <= area.width * area.height / 8 and box.width <= area.width:
            continue
        old.set_visible(False)  # out of the panel's extent below
        below = (area.y0 - ax.get_tightbbox(renderer).y0) / fig.dpi + 0.05
        place = ax.transAxes + ScaledTranslation(0, -below, fig.dpi_scale_trans)
        title = old.get_title().get_text() or None
        grow += below + relay(
            old,
            functools.partial(
                ax.legend,
                title=title,
                loc="upper center",
                bbox_to_anchor=(0.5, 0),
                bbox_transform=place,
            ),
        )
    for old in list(fig.legends):
        old.remove()
        grow += relay(old, functools.partial(fig.legend, loc="outside lower center"))
    if grow:
        w, h = fig.get_size_inches()
        fig.set_size_inches(w, h + grow)


def phone_png(fig, *, tight: bool = True) -> bytes | None:
    """The PNG of :func:`phone_figure` (``tight`` as in :func:`png_bytes`), or
    ``None`` if ``fig`` already fits a phone's column or cannot be copied."""
    import matplotlib.pyplot as plt

    if fig.get_size_inches()[0] <= PHONE_WIDTH * 1.05:
        return None
    # a layout squeezed on the way (before a legend moves) may warn: the
    # reader of the page never sees this copy drawn, so the warning is not theirs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copy = phone_figure(fig)
        if copy is None:
            return None
        try:
            return png_bytes(copy, tight=tight)
        finally:
            plt.close(copy)


def _shown(data: bytes) -> tuple[int, int]:
    """The size in CSS pixels at which PNG ``data`` is shown."""
    width, height = png_size(data)
    return width // PIXEL_RATIO, height // PIXEL_RATIO


def _figure_png(fig):
    data, phone = png_bytes(fig), phone_png(fig)
    width, height = _shown(data)
    data = data if phone is None else with_phone(data, phone)
    return data, {"width": width, "height": height}


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


def _uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _png(fig) -> tuple[str, tuple[int, int], str, tuple | None]:
    """A frame: the PNG as a data URI, its shown size, its description, and its
    phone rendering as ``(uri, shown size)`` (``None`` if it has none)."""
    import matplotlib.pyplot as plt

    data = png_bytes(fig, tight=False)  # every frame the same size
    text, phone = describe(fig), phone_png(fig, tight=False)
    plt.close(fig)
    return _uri(data), _shown(data), text, phone and (_uri(phone), _shown(phone))


def _check_slider_values(params: dict, initial: dict | None):
    """``params`` with every sequence of values as a list, and ``initial`` as a dict."""
    if not isinstance(params, dict) or not params:
        raise ValueError(
            f"params must be a non-empty dict of name -> values, got {params!r}"
        )
    params = {name: list(values) for name, values in params.items()}
    for name, values in params.items():
        if not values:
            raise ValueError(f"params[{name!r}] must list at least one value, got []")
    initial = dict(initial or {})
    for name, value in initial.items():
        if name not in params or value not in params[name]:
            raise ValueError(
                f"initial[{name!r}] must be one of params[{name!r}], got {value!r}"
            )
    return params, initial


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

    params, initial = _check_slider_values(params, initial)
    names, sizes = list(params), [len(values) for values in params.values()]
    frames = []
    for combo in itertools.product(*params.values()):
        fig = plt.figure(figsize=figsize)
        draw(fig, **dict(zip(names, combo, strict=True)))
        frames.append(_png(fig))
    uris, shown, texts, phones = zip(*frames, strict=True)
    phones = None if None in phones else phones
    uid = "whydeep-slider-" + hashlib.sha1("".join(uris).encode()).hexdigest()[:12]
    # frame k of the flat list shows value (k // strides[p]) % sizes[p] of param p
    strides = [math.prod(sizes[p + 1 :]) for p in range(len(sizes))]
    start = [params[n].index(initial[n]) if n in initial else 0 for n in names]
    first = sum(i * s for i, s in zip(start, strides, strict=True))
    labels = [[fmt(v) for v in params[n]] for n in names]
    source = ""
    if phones is not None:
        uri, (p_width, p_height) = phones[first]
        source = (
            f'<source media="{PHONE_MEDIA}" srcset="{uri} 2x" '
            f'width="{p_width}" height="{p_height}">'
        )
    chosen = list(enumerate(zip(names, start, strict=True)))
    alt = "Interactive figure, one frame per slider position. " + (
        texts[first]
        or "Frame for " + ", ".join(f"{n} = {labels[k][i]}" for k, (n, i) in chosen)
    )
    controls = "".join(
        f'<label style="display:block;margin:0.2em 0">{html.escape(str(n))} '
        f'<input type="range" min="0" max="{sizes[k] - 1}" value="{i}" step="1" '
        f'data-param="{k}" style="vertical-align:middle;width:50%"> '
        f"<output>{html.escape(labels[k][i])}</output></label>"
        for k, (n, i) in chosen
    )
    # The frames are data URIs in the notebook; the book's build writes each
    # one to a file and puts its address in their place (_ext/whydeep_reading.py).
    script = (
        "(function(){"
        f'var root=document.getElementById("{uid}");'
        'var frames=JSON.parse(root.querySelector(".whydeep-slider-frames")'
        ".textContent);"
        f"var labels={json.dumps(labels)};"
        f"var strides={json.dumps(strides)};"
        'var img=root.querySelector("img");'
        'var inputs=root.querySelectorAll("input");'
        "function update(){var k=0;inputs.forEach(function(el){"
        "var p=+el.dataset.param;k+=strides[p]*(+el.value);"
        "el.nextElementSibling.textContent=labels[p][+el.value];});"
        "img.src=frames.wide[k];"
        'if(frames.phone){root.querySelector("source").srcset='
        'frames.phone[k]+" 2x";}}'
        'inputs.forEach(function(el){el.addEventListener("input",update);});'
        "})();"
    )
    body = (
        f'<div class="whydeep-slider" id="{uid}"><picture>{source}'
        f'<img alt="{html.escape(alt)}" width="{shown[first][0]}" '
        f'height="{shown[first][1]}" '
        'loading="lazy" style="max-width:100%;height:auto" '
        f'src="{uris[first]}"></picture>'
        f"<div>{controls}</div>"
        '<script type="application/json" class="whydeep-slider-frames">'
        f"{json.dumps({'wide': uris, 'phone': phones and [u for u, _ in phones]})}"
        "</script>"
        f"<script>{script}</script></div>"
    )
    return HTML(body)


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
    params, initial = _check_slider_values(params, initial)
    try:
        import ipywidgets as widgets
    except ImportError:
        widgets = None
    if in_book_build() or widgets is None:
        return static_slider(draw, params, figsize=figsize, initial=initial, fmt=fmt)

    import matplotlib.pyplot as plt

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
