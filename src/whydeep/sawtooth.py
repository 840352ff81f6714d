"""What width buys and what depth buys, for functions of one (or two) inputs.

Width: a hidden layer of step neurons builds boxes, and enough boxes approximate
any Lipschitz function (:func:`box_network`, :func:`box_sum_network`). Depth: a
ReLU network is piecewise linear, and composing layers multiplies its pieces
(:func:`sawtooth_network`). The pieces are counted exactly from the weights
(:func:`piecewise_linear`, :func:`linear_regions_2d`): breakpoints are solved for
layer by layer, never read off a grid.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._checks import check_float, check_int, numpy_generator, torch_generator
from ._runtime import single_thread
from .nets import BatchedMLP, layer_sizes, linear_layers, mlp, n_params
from .training import History, fit_levenberg_marquardt

# ---------------------------------------------------------------- boxes


class Step(nn.Module):
    """The step activation: 1 where the input is > 0, else 0 (so step(0) = 0)."""

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return (u > 0).to(u.dtype)


def _box_args(height, width, start) -> tuple[float, float, float]:
    return (
        check_float("height", height),
        check_float("width", width, positive=True),
        check_float("start", start),
    )


def box(x, height: float, width: float, start: float = 0.0) -> np.ndarray:
    """The box: ``height`` on the open interval (start, start + width), 0 elsewhere.

    ``x`` has shape (n,); so has the result. ``width`` must be > 0.
    """
    height, width, start = _box_args(height, width, start)
    x = np.asarray(x, dtype=float)
    return np.where((x > start) & (x < start + width), height, 0.0)


def _network(weights, biases, unit=nn.ReLU, dtype=torch.float64) -> nn.Sequential:
    """``nn.Linear`` layers with the given weights and biases, ``unit()`` between."""
    layers: list[nn.Module] = []
    for w, b in zip(weights, biases, strict=True):
        w = torch.as_tensor(np.asarray(w, dtype=float), dtype=dtype)
        linear = nn.Linear(w.shape[1], w.shape[0], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(w)
            linear.bias.copy_(torch.as_tensor(np.asarray(b, dtype=float), dtype=dtype))
        layers += [linear, unit()]
    return nn.Sequential(*layers[:-1])


def _step_network(thresholds, jumps, offset, dtype, unit=Step) -> nn.Sequential:
    """``offset + sum_k jumps[k] * unit(x - thresholds[k])`` as one hidden layer."""
    thresholds = np.asarray(thresholds, dtype=float)
    weights = [np.ones((len(thresholds), 1)), np.asarray(jumps, dtype=float)[None]]
    return _network(weights, [-thresholds, [offset]], unit, dtype)


def box_network(
    height: float, width: float, start: float = 0.0, dtype: torch.dtype = torch.float64
) -> nn.Sequential:
    """Two step neurons and a linear read-out that together draw a box.

    The hidden units are ``step(x - start)`` and ``step(x - start - width)``; the
    read-out is ``height * (first - second)`` with no bias. The network equals
    :func:`box` everywhere except at the right edge ``x = start + width``, where
    the first unit is on and the second still off.

    Returns
    -------
    torch.nn.Sequential
        ``Linear(1, 2) -> Step -> Linear(2, 1)``; input and output shape ``(n, 1)``.
    """
    height, width, start = _box_args(height, width, start)
    return _step_network([start, start + width], [height, -height], 0.0, dtype)


def box_sum_network(f, bound: float, n_boxes: int, dtype: torch.dtype = torch.float64):
    """A sum of ``n_boxes`` boxes tiling [-bound, bound], as one step network.

    Box ``i`` covers the ``i``-th of ``n_boxes`` equal cells and has height ``f``
    at the cell's centre. Neighbouring boxes share an edge, so the up-step of one
    and the down-step of the next merge into a single neuron whose read-out weight
    is the difference of the two heights: ``n_boxes + 1`` step neurons in all.
    The first neuron switches on half a cell left of ``-bound`` rather than at
    it, so that with step(0) = 0 the network takes the first box's height at
    ``x = -bound`` too and follows ``f`` on the whole closed interval.

    Parameters
    ----------
    f : callable
        Maps a NumPy array of shape (n,) to an array of shape (n,).
    bound : float
        Half-width ``B`` of the interval (> 0).
    n_boxes : int
        Number of boxes ``N`` (>= 1); each has width ``2 B / N``.

    Returns
    -------
    net : torch.nn.Sequential
        ``Linear(1, N + 1) -> Step -> Linear(N + 1, 1)``.
    edges : numpy.ndarray, shape (N + 1,)
        The cell edges.
    """
    bound = check_float("bound", bound, positive=True)
    n_boxes = check_int("n_boxes", n_boxes, minimum=1)
    edges = np.linspace(-bound, bound, n_boxes + 1)
    heights = np.asarray(f(0.5 * (edges[:-1] + edges[1:])), dtype=float)
    jumps = np.diff(np.concatenate([[0.0], heights, [0.0]]))
    thresholds = edges.copy()
    thresholds[0] -= 0.5 * (edges[1] - edges[0])
    return _step_network(thresholds, jumps, 0.0, dtype), edges


def evaluate(net: nn.Module, x) -> np.ndarray:
    """Evaluate a network of one input and one output on the points ``x``.

    ``x`` has shape (n,); the result has shape (n,). Large inputs are evaluated in
    chunks so that wide networks do not need one huge activation matrix.
    """
    dtype = next(net.parameters()).dtype
    x = torch.as_tensor(np.asarray(x, dtype=float), dtype=dtype).reshape(-1, 1)
    with torch.no_grad():
        out = [net(chunk) for chunk in torch.split(x, 4096)]
    return torch.cat(out).reshape(-1).numpy()


def box_sup_error(f, bound: float, n_boxes: int, points_per_box: int = 9) -> float:
    """Largest |f - box sum| over [-bound, bound], for :func:`box_sum_network`.

    In a cell the error ``|f(x) - f(centre)|`` of a smooth ``f`` is largest at the
    cell's edges, so each cell is sampled at ``points_per_box`` points spanning it
    from (just inside) one edge to the other; the interval's ends ``±bound`` are
    sampled too.
    """
    bound = check_float("bound", bound, positive=True)
    n_boxes = check_int("n_boxes", n_boxes, minimum=1)
    points_per_box = check_int("points_per_box", points_per_box, minimum=2)
    net, edges = box_sum_network(f, bound, n_boxes)
    centres = 0.5 * (edges[:-1] + edges[1:])
    half = 0.5 * (edges[1] - edges[0]) * (1 - 1e-9)
    x = (centres[:, None] + half * np.linspace(-1, 1, points_per_box)[None, :]).ravel()
    x = np.concatenate([[-bound], x, [bound]])
    return float(np.max(np.abs(np.asarray(f(x)) - evaluate(net, x))))


def grid_neurons(dim: int, bound: float, cell_width: float) -> dict:
    """Size of the box construction in ``dim`` dimensions.

    Each axis of the cube [-bound, bound]^dim is cut into ``n = ceil(2 bound /
    cell_width)`` cells. The first hidden layer holds one step neuron per cut, per
    axis (``dim * (n + 1)``); a second layer holds one neuron per grid cell, which
    fires when all ``2 dim`` of its walls say "inside" (``n ** dim``).

    Returns
    -------
    dict
        ``cells_per_axis``, ``cells``, ``neurons`` (Python ints, exact however large).
    """
    dim = check_int("dim", dim, minimum=1)
    bound = check_float("bound", bound, positive=True)
    cell_width = check_float("cell_width", cell_width, positive=True)
    n = math.ceil(2 * bound / cell_width - 1e-12)
    return {"cells_per_axis": n, "cells": n**dim, "neurons": dim * (n + 1) + n**dim}


# ---------------------------------------------------------------- sawtooth


def sawtooth(x, n_hidden: int) -> np.ndarray:
    """The reference values f_L(x): f_0(x) = x and f_l = 2 |f_{l-1}| - 2.

    ``x`` has shape (n,); so has the result.
    """
    n_hidden = check_int("n_hidden", n_hidden, minimum=0)
    values = np.asarray(x, dtype=float).copy()
    for _ in range(n_hidden):
        values = 2 * np.abs(values) - 2
    return values


def _sawtooth_layers(n_hidden: int) -> tuple[list, list]:
    """The weights and biases of :func:`sawtooth_network`, layer by layer."""
    if n_hidden == 0:
        return [np.ones((1, 1))], [np.zeros(1)]
    fold_w, fold_b = np.array([[2.0, 2.0], [-2.0, -2.0]]), np.array([-2.0, 2.0])
    weights = [np.array([[1.0], [-1.0]]), *[fold_w] * (n_hidden - 1), fold_w[:1]]
    return weights, [np.zeros(2), *[fold_b] * (n_hidden - 1), fold_b[:1]]


def sawtooth_network(
    n_hidden: int, dtype: torch.dtype = torch.float64
) -> nn.Sequential:
    """f_L as a ReLU network with ``n_hidden`` hidden layers of two units.

    Hidden layer ``l`` holds ``relu(f_{l-1})`` and ``relu(-f_{l-1})``; since
    ``f_{l-1} = 2 relu(f_{l-2}) + 2 relu(-f_{l-2}) - 2``, its weights are
    ``[[2, 2], [-2, -2]]`` with biases ``[-2, 2]``. The output layer reads
    ``2 relu(f_{L-1}) + 2 relu(-f_{L-1}) - 2``. For ``n_hidden = 0`` the network
    is the single linear map x -> x.

    Returns
    -------
    torch.nn.Sequential
        Input and output shape ``(n, 1)``; ``6 L + 1`` parameters for L >= 1.
    """
    n_hidden = check_int("n_hidden", n_hidden, minimum=0)
    return _network(*_sawtooth_layers(n_hidden), dtype=dtype)


class ShallowReLU(nn.Module):
    """One hidden layer of ReLUs plus an affine term in the input.

    ``f(x) = body(x) + slope * x``, with ``body`` the plain network
    ``intercept + sum_k jumps[k] * relu(x - kinks[k])``: unit ``k`` bends the
    graph at ``kinks[k]`` and changes its slope by ``jumps[k]``.
    Parameters: ``3 n + 2`` for ``n`` units.
    """

    def __init__(self, kinks, jumps, slope: float, intercept: float):
        super().__init__()
        if np.shape(kinks) != np.shape(jumps) or np.ndim(kinks) != 1:
            raise ValueError(
                "kinks and jumps must be 1-D of one length, got shapes "
                f"{np.shape(kinks)} and {np.shape(jumps)}"
            )
        self.body = _step_network(kinks, jumps, intercept, torch.float64, nn.ReLU)
        self.skip_weight = nn.Parameter(
            torch.tensor([[float(slope)]], dtype=torch.float64)
        )

    @property
    def n_units(self) -> int:
        return self.body[0].out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x @ self.skip_weight.T


def shallow_equivalent(
    net: nn.Module, lo: float = -2.0, hi: float = 2.0, skip: bool = True
):
    """A one-hidden-layer ReLU network equal to ``net`` on [lo, hi], one unit per kink.

    Parameters
    ----------
    net : torch.nn.Module
        A scalar network accepted by :func:`piecewise_linear`.
    lo, hi : float
        The interval (``lo < hi``).
    skip : bool, default True
        With the skip, the affine part of the leftmost piece is an affine term of
        the input and the network has exactly one unit per kink
        (:class:`ShallowReLU`). Without it, one more unit ``relu(x - lo)``, which
        is affine on [lo, hi], carries that term, and the result is a plain
        ``Linear -> ReLU -> Linear`` network.
    """
    pieces = piecewise_linear(net, lo, hi)
    jumps = np.diff(pieces.slopes)
    slope, intercept = pieces.slopes[0], pieces.intercepts[0]
    if skip:
        return ShallowReLU(pieces.kinks, jumps, slope, intercept)
    thresholds = np.concatenate([[pieces.lo], pieces.kinks])
    weights = np.concatenate([[slope], jumps])
    offset = intercept + slope * pieces.lo
    return _step_network(thresholds, weights, offset, torch.float64, nn.ReLU)


def shallow_sawtooth(n_hidden: int, skip: bool = True):
    """The exact one-hidden-layer equivalent of f_L on [-2, 2].

    ``2**L - 1`` units with the affine skip term, ``2**L`` without
    (see :func:`shallow_equivalent`).
    """
    n_hidden = check_int("n_hidden", n_hidden, minimum=0)
    return shallow_equivalent(sawtooth_network(n_hidden), -2.0, 2.0, skip=skip)


# ---------------------------------------------------------------- exact pieces


def _checked_ops(net: nn.Module, lo, hi, n_inputs: int) -> tuple[float, float, list]:
    """``lo``, ``hi`` and ``net`` as a list of ('affine', W, b) and ('relu',)
    steps in float64 (a :class:`ShallowReLU` without its skip term), after
    checking that ``lo < hi`` and that ``net`` takes ``n_inputs`` inputs."""
    lo = check_float("lo", lo)
    hi = check_float("hi", hi)
    if not hi > lo:
        raise ValueError(f"hi must be > lo, got lo={lo!r}, hi={hi!r}")
    body = net.body if isinstance(net, ShallowReLU) else net
    if not isinstance(body, nn.Sequential):
        raise ValueError(
            "net must be an nn.Sequential of Linear/ReLU layers or a ShallowReLU, "
            f"got {type(net).__name__}"
        )
    ops = []
    for module in body:
        if isinstance(module, nn.Linear):
            w = module.weight.detach().double().numpy()
            b = np.zeros(len(w)) if module.bias is None else module.bias.detach()
            ops.append(("affine", w, np.asarray(b, dtype=float)))
        elif isinstance(module, nn.ReLU):
            ops.append(("relu",))
        elif not isinstance(module, nn.Identity):
            raise ValueError(
                "net may contain only Linear, ReLU and Identity layers, "
                f"got {type(module).__name__}"
            )
    if not ops or ops[0][0] != "affine" or ops[0][1].shape[1] != n_inputs:
        got = ops[0][1].shape[1] if ops and ops[0][0] == "affine" else "no Linear"
        wanted = "a single input feature" if n_inputs == 1 else f"{n_inputs} inputs"
        raise ValueError(f"net must take {wanted}, got {got}")
    return lo, hi, ops


@dataclass
class Pieces:
    """A scalar piecewise-linear function on [lo, hi].

    Attributes
    ----------
    lo, hi : float
        The interval.
    kinks : numpy.ndarray, shape (n_pieces - 1,)
        Interior points where the slope changes, increasing.
    slopes, intercepts : numpy.ndarray, shape (n_pieces,)
        On piece ``i`` the function is ``slopes[i] * x + intercepts[i]``.
    """

    lo: float
    hi: float
    kinks: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray

    @property
    def n_pieces(self) -> int:
        return len(self.slopes)

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        piece = np.searchsorted(self.kinks, x)
        return self.slopes[piece] * x + self.intercepts[piece]


def _propagate(ops, lo: float, hi: float, record: list | None = None):
    """Push [lo, hi] through the network, splitting it wherever a unit switches.

    Returns the breakpoints ``t`` (m + 1,) and, on each of the m intervals, the
    affine map ``x -> slope * x + offset`` of every unit of the last layer
    (``slope``, ``offset`` of shape (m, width)). If ``record`` is a list, the
    pre-activations of every ReLU layer are appended to it as
    ``(t, slope, offset)``: affine on each interval of ``t``.
    """
    tol = 1e-12 * (hi - lo)
    t = np.array([lo, hi])
    slope, offset = np.ones((1, 1)), np.zeros((1, 1))
    for op in ops:
        if op[0] == "affine":
            _, w, b = op
            slope, offset = slope @ w.T, offset @ w.T + b
            continue
        if record is not None:
            record.append((t, slope, offset))
        with np.errstate(divide="ignore", invalid="ignore"):
            root = -offset / slope
        inside = (slope != 0) & (root > t[:-1, None] + tol) & (root < t[1:, None] - tol)
        if inside.any():
            # roots in interval j lie inside it, so sorting each row keeps the
            # global order without a global sort
            root = np.sort(np.where(inside, root, np.inf), axis=1)
            candidates = np.concatenate([t[:-1, None], root], axis=1)
            keep = np.isfinite(candidates)
            with np.errstate(invalid="ignore"):
                # two units switching at (numerically) one point make one breakpoint
                keep[:, 1:] &= np.diff(candidates, axis=1) > tol
            rows = np.broadcast_to(np.arange(len(t) - 1)[:, None], candidates.shape)
            t, parent = np.append(candidates[keep], hi), rows[keep]
            slope, offset = slope[parent], offset[parent]
        middle = 0.5 * (t[:-1] + t[1:])
        active = slope * middle[:, None] + offset > 0
        slope, offset = slope * active, offset * active
    return t, slope, offset


def piecewise_linear(net: nn.Module, lo: float = -2.0, hi: float = 2.0) -> Pieces:
    """The exact linear pieces of a scalar ReLU network on [lo, hi].

    Every unit of a ReLU network is affine in ``x`` between consecutive switch
    points, so the interval is pushed through the network layer by layer: after
    each affine layer the zero of every unit on every current interval is solved
    for, the intervals are split there, and the units that are negative on a
    piece are set to zero. Neighbouring pieces of the output with the same slope
    (a split that did not bend the output) are merged.

    Parameters
    ----------
    net : torch.nn.Module
        ``nn.Sequential`` of ``nn.Linear`` (1 input, 1 output overall), ``nn.ReLU``
        and ``nn.Identity`` layers, or a :class:`ShallowReLU`.
    lo, hi : float
        The interval, ``lo < hi``.

    Returns
    -------
    Pieces
    """
    lo, hi, ops = _checked_ops(net, lo, hi, 1)
    skip = net.skip_weight.detach() if isinstance(net, ShallowReLU) else 0.0
    t, slope, offset = _propagate(ops, lo, hi)
    if slope.shape[1] != 1:
        raise ValueError(f"net must have a single output, got {slope.shape[1]}")
    slope, offset = slope[:, 0] + float(skip), offset[:, 0]
    scale = max(1.0, float(np.max(np.abs(slope))))
    bends = np.abs(np.diff(slope)) > 1e-9 * scale
    keep = np.concatenate([[True], bends])
    return Pieces(
        lo=lo, hi=hi, kinks=t[1:-1][bends], slopes=slope[keep], intercepts=offset[keep]
    )


def count_pieces(net: nn.Module, lo: float = -2.0, hi: float = 2.0) -> int:
    """Number of linear pieces of a scalar ReLU network on [lo, hi] (exact)."""
    return piecewise_linear(net, lo, hi).n_pieces


def sawtooth_params(n_hidden: int) -> dict:
    """Parameter counts of f_L: the deep network and its exact shallow equivalent.

    Returns
    -------
    dict
        ``deep`` (``6 L + 1``, or 2 for L = 0), ``shallow_units`` (``2**L - 1``) and
        ``shallow`` (``3 (2**L - 1) + 2``, with the affine skip term).
    """
    n_hidden = check_int("n_hidden", n_hidden, minimum=0)
    units = 2**n_hidden - 1
    deep = 2 if n_hidden == 0 else 6 * n_hidden + 1
    return {"deep": deep, "shallow_units": units, "shallow": 3 * units + 2}


# ---------------------------------------------------------------- random and trained


def unit_statistics(net: nn.Module, lo: float = -2.0, hi: float = 2.0) -> list[dict]:
    """Exact statistics of every hidden unit's pre-activation ``z`` on [lo, hi].

    ``z`` is piecewise linear in ``x``, so each statistic is an exact sum over
    its pieces. One dict per hidden layer, each entry of shape (width,):

    ``variation``
        Total variation ``∫ |z'(x)| dx``.
    ``zeros``
        Number of points in (lo, hi) where ``z`` changes sign.
    ``mean_square``, ``mean_square_slope``
        Averages of ``z(x)**2`` and ``z'(x)**2`` over x uniform on [lo, hi].
    """
    lo, hi, ops = _checked_ops(net, lo, hi, 1)
    record: list = []
    _propagate(ops, lo, hi, record)
    stats = []
    for t, slope, offset in record:
        a, b = t[:-1, None], t[1:, None]
        length = b - a
        za, zb = slope * a + offset, slope * b + offset
        square = length * (za**2 + za * zb + zb**2) / 3
        sign = np.sign(np.concatenate([za[:1], zb], axis=0))
        zeros = np.array([np.count_nonzero(np.diff(u[u != 0])) for u in sign.T])
        stats.append(
            {
                "variation": (np.abs(slope) * length).sum(axis=0),
                "zeros": zeros,
                "mean_square": square.sum(axis=0) / (hi - lo),
                "mean_square_slope": (slope**2 * length).sum(axis=0) / (hi - lo),
            }
        )
    return stats


def random_pieces_bound(
    width: int,
    n_hidden_list,
    n_nets: int,
    seed: int,
    *,
    sigma_b: float = 0.5,
    lo: float = -2.0,
    hi: float = 2.0,
) -> dict:
    """Pieces of random ReLU networks with the Hanin–Rolnick bound, network by network.

    The networks are those of :func:`random_relu_net` (He initialisation, biases
    N(0, ``sigma_b``²)), ``n_nets`` per depth. Every kink of a network is a sign
    change of some hidden unit's pre-activation ``z = b + g(x)``, and ``g`` does
    not depend on the unit's own bias ``b``. Averaging over ``b`` alone, the
    expected number of sign changes of ``z`` is at most ``C_b ∫ |g'(x)| dx``
    with ``C_b`` the largest density of ``b``, ``1 / (sigma_b sqrt(2 pi))``.
    Summed over units: ``E[pieces] <= 1 + C_b E[sum_z TV(z)]``, the one-input
    form of the bound of Hanin and Rolnick (2019).

    Returns
    -------
    dict
        ``pieces`` and ``bound`` (``1 + C_b sum_z TV(z)`` of the same network),
        shape (len(n_hidden_list), n_nets); ``mean_square`` and
        ``mean_square_slope``, lists with one array per depth, shape
        (n_hidden, n_nets): the layer averages of ``z**2`` and ``z'**2``;
        ``zeros`` and ``variation``, lists of the same shapes: the layer sums of
        sign changes and of total variations.
    """
    width = check_int("width", width, minimum=1)
    n_nets = check_int("n_nets", n_nets, minimum=1)
    sigma_b = check_float("sigma_b", sigma_b, positive=True)
    generator = torch_generator(seed)
    c_bias = 1.0 / (sigma_b * math.sqrt(2 * math.pi))
    keys = ("mean_square", "mean_square_slope", "zeros", "variation")
    out = {key: [] for key in ("pieces", "bound", *keys)}
    for n_hidden in n_hidden_list:
        n_hidden = check_int("n_hidden_list[i]", n_hidden, minimum=1)
        rows = []
        for _ in range(n_nets):
            net = random_relu_net(1, width, n_hidden, generator, sigma_b)
            stats = unit_statistics(net, lo, hi)
            row = {
                key: [(np.mean if key[:4] == "mean" else np.sum)(s[key]) for s in stats]
                for key in keys
            }
            row["pieces"] = count_pieces(net, lo, hi)
            row["bound"] = 1 + c_bias * sum(row["variation"])
            rows.append(row)
        for key, values in out.items():
            values.append(np.array([row[key] for row in rows]).T)
    out["pieces"], out["bound"] = np.array(out["pieces"]), np.array(out["bound"])
    return out


def region_counts_2d(
    shapes,
    n_draws: int,
    seed: int,
    *,
    sigma_b: float = 0.5,
    lo: float = -2.0,
    hi: float = 2.0,
) -> np.ndarray:
    """Activation regions on [lo, hi]^2 of random two-input ReLU networks.

    ``shapes`` lists ``(width, n_hidden)``; each network is drawn as in
    :func:`random_relu_net` (He initialisation, biases N(0, sigma_b²)).

    Returns
    -------
    numpy.ndarray, shape (len(shapes), n_draws)
        Exact counts by :func:`linear_regions_2d`.
    """
    n_draws = check_int("n_draws", n_draws, minimum=1)
    sigma_b = check_float("sigma_b", sigma_b, positive=True)
    generator = torch_generator(seed)
    counts = []
    for width, n_hidden in shapes:
        nets = (
            random_relu_net(2, width, n_hidden, generator, sigma_b)
            for _ in range(n_draws)
        )
        counts.append([len(linear_regions_2d(net, lo, hi)) for net in nets])
    return np.array(counts)


def random_relu_net(
    n_in: int,
    width: int,
    n_hidden: int,
    seed,
    sigma_b: float = 0.5,
) -> nn.Sequential:
    """A ReLU network, ``n_hidden`` hidden layers of ``width`` units, He initialisation.

    Weights N(0, 2 / fan_in), biases N(0, sigma_b**2), float64; ``seed`` an int or
    a ``torch.Generator`` whose stream continues.
    """
    n_hidden = check_int("n_hidden", n_hidden, minimum=1)
    return mlp(
        n_in,
        width,
        n_hidden + 1,
        "relu",
        sigma=math.sqrt(2.0),
        bias=True,
        sigma_b=sigma_b,
        seed=seed,
        dtype=torch.float64,
    )


#: The stopping rule of :func:`train_relu_nets`: a network stops when ``PATIENCE``
#: steps in a row have not brought its training loss a relative ``TOL`` below its
#: best (the rule of :func:`whydeep.training.fit_levenberg_marquardt`).
TOL, PATIENCE = 1e-4, 50
#: The safeguard of :func:`train_relu_nets`: at most this many steps.
MAX_STEPS = 3000


def train_relu_nets(
    nets,
    x,
    y,
    *,
    tol: float = TOL,
    patience: int = PATIENCE,
    max_steps: int = MAX_STEPS,
    damping: float = 1.0,
) -> tuple[list[nn.Sequential], History]:
    """Train same-shaped scalar ReLU networks with biases by Levenberg–Marquardt.

    Full batch, float64, all networks in one batched computation
    (:func:`whydeep.training.fit_levenberg_marquardt`, which describes the
    step and the stopping rule), each with its own damping and its own stop.

    Parameters
    ----------
    nets : list of torch.nn.Sequential
        Networks of one architecture (``Linear`` with bias, ``ReLU``), one input
        and one output, e.g. from :func:`random_relu_net`; left untouched.
    x, y : array_like, shape (n,)
        Training inputs and targets.

    Returns
    -------
    trained : list of torch.nn.Sequential
        Trained float64 copies.
    history : whydeep.training.History
        As :func:`whydeep.training.fit_levenberg_marquardt` returns it.
    """
    nets = list(nets)
    if not nets:
        raise ValueError("nets must hold at least one network, got none")
    first = linear_layers(nets[0])
    width, depth = first[0].out_features, len(first)
    shapes = [
        shape
        for fan_in, fan_out in itertools.pairwise(layer_sizes(1, width, depth))
        for shape in ((fan_out, fan_in), (fan_out,))
    ]
    if any([p.shape for p in net.parameters()] != shapes for net in nets):
        raise ValueError(
            "nets must be ReLU networks of one architecture, one input, one output "
            "and one width in every hidden layer, with biases: parameters of shapes "
            f"{shapes}, like the first"
        )
    x = torch.as_tensor(np.asarray(x, dtype=float)).reshape(-1, 1)
    y = torch.as_tensor(np.asarray(y, dtype=float)).reshape(-1, 1)
    model = BatchedMLP(1, [width] * len(nets), depth, "relu", bias=True, dtype=x.dtype)
    params = [
        torch.stack([p.detach().double() for p in ps])
        for ps in zip(*(net.parameters() for net in nets), strict=True)
    ]
    model.set_members(torch.arange(len(nets)), params)
    with single_thread():
        history = fit_levenberg_marquardt(
            model,
            x,
            y,
            max_steps=max_steps,
            tol=tol,
            patience=patience,
            damping=damping,
        )
    return [model.member(k) for k in range(len(nets))], history


def fit_architectures(n_hidden: int, deep_widths=(2, 4, 8)) -> list[tuple]:
    """The shapes that compete at fitting f_L, as ``(width, n_hidden)`` pairs.

    Deep: ``n_hidden`` hidden layers of each width in ``deep_widths``. Shallow:
    one hidden layer with as many parameters as each deep network (``u`` units
    have ``3 u + 1``, rounded to the nearest ``u``), and one of ``2**n_hidden``
    units, the fewest that represent f_L exactly without a skip term.
    """
    n_hidden = check_int("n_hidden", n_hidden, minimum=1)
    deep = [(check_int("deep_widths[i]", w, minimum=1), n_hidden) for w in deep_widths]
    params = [n_params(1, w, n_hidden + 1, bias=True) for w, _ in deep]
    units = {round((p - 1) / 3) for p in params} | {2**n_hidden}
    return deep + [(u, 1) for u in sorted(units)]


def train_sweep(
    architectures,
    target,
    *,
    n_starts: int = 5,
    n_points: int = 256,
    seed: int = 0,
    sigma_b: float = 0.5,
    lo: float = -2.0,
    hi: float = 2.0,
    **train_kw,
) -> list[dict]:
    """Train ``n_starts`` random starts of each architecture on ``target``.

    Every network is :func:`whydeep.nets.mlp` with ReLU, biases, He
    initialisation (weights N(0, 2 / fan_in), biases N(0, sigma_b²)), float64,
    trained by :func:`train_relu_nets` on ``n_points`` equally spaced points of
    [lo, hi]; its linear pieces on [lo, hi] are counted exactly
    (:func:`count_pieces`) before and after training.

    Parameters
    ----------
    architectures : sequence of (width, n_hidden)
    target : callable
        Maps a NumPy array of inputs to the targets.

    Returns
    -------
    list of dict, one per architecture
        ``width``, ``n_hidden``, ``units``, ``params``; arrays over the starts:
        ``rmse`` (root-mean-square training error), ``pieces_before``,
        ``pieces_after``, ``steps``, ``converged``; ``curve``, the loss history
        of the best start (lowest final loss), and ``best`` (its index).
    """
    n_starts = check_int("n_starts", n_starts, minimum=1)
    n_points = check_int("n_points", n_points, minimum=2)
    sigma_b = check_float("sigma_b", sigma_b, positive=True)
    generator = torch_generator(seed)
    x = np.linspace(lo, hi, n_points)
    y = np.asarray(target(x), dtype=float)
    results = []
    for width, n_hidden in architectures:
        width = check_int("width", width, minimum=1)
        n_hidden = check_int("n_hidden", n_hidden, minimum=1)
        starts = [
            random_relu_net(1, width, n_hidden, generator, sigma_b)
            for _ in range(n_starts)
        ]
        trained, history = train_relu_nets(starts, x, y, **train_kw)
        final = history.loss[-1]
        best = int(np.argmin(final))
        results.append(
            {
                "width": width,
                "n_hidden": n_hidden,
                "units": width * n_hidden,
                "params": n_params(1, width, n_hidden + 1, bias=True),
                "rmse": np.sqrt(final),
                "pieces_before": np.array([count_pieces(n, lo, hi) for n in starts]),
                "pieces_after": np.array([count_pieces(n, lo, hi) for n in trained]),
                "steps": history.extra["steps"],
                "converged": history.extra["converged"],
                "no_step": history.extra["no_step"],
                "curve": history.loss[:, best],
                "best": best,
                "nets": trained,
            }
        )
    return results


# ---------------------------------------------------------------- two inputs


def _split_polygon(vertices: np.ndarray, values: np.ndarray):
    """Cut a convex polygon along the zero line of an affine function.

    ``values`` are the function's values at the vertices; returns the parts where
    it is >= 0 and <= 0.
    """
    positive, negative = [], []
    n = len(vertices)
    for i in range(n):
        p, q = vertices[i], vertices[(i + 1) % n]
        a, b = values[i], values[(i + 1) % n]
        if a >= 0:
            positive.append(p)
        if a <= 0:
            negative.append(p)
        if a * b < 0:
            cross = p + (a / (a - b)) * (q - p)
            positive.append(cross)
            negative.append(cross)
    return np.array(positive), np.array(negative)


def linear_regions_2d(
    net: nn.Sequential, lo: float = -2.0, hi: float = 2.0
) -> list[tuple[np.ndarray, tuple]]:
    """The exact linear regions of a two-input ReLU network on the square [lo, hi]^2.

    The regions are the sets of inputs that share one activation pattern (which
    units are on). Each is a convex polygon, because with the pattern fixed every
    unit is affine in the input. The square is pushed through the network and
    every polygon is cut along the line where a unit switches.

    Returns
    -------
    list of (vertices, pattern)
        ``vertices`` of shape (k, 2), in order around the polygon; ``pattern`` a
        tuple of 0/1, one entry per hidden unit.
    """
    lo, hi, ops = _checked_ops(net, lo, hi, 2)
    square = np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]])
    regions = [(square, np.eye(2), np.zeros(2), ())]
    for op in ops:
        if op[0] == "affine":
            _, w, b = op
            regions = [(v, w @ m, w @ c + b, pattern) for v, m, c, pattern in regions]
            continue
        refined = []
        for vertices, m, c, pattern in regions:
            parts = [(vertices, ())]
            for unit in range(m.shape[0]):
                tol = 1e-10 * (
                    np.abs(m[unit]).sum() * max(abs(lo), abs(hi))
                    + abs(c[unit])
                    + 1e-300
                )
                next_parts = []
                for poly, bits in parts:
                    values = poly @ m[unit] + c[unit]
                    values[np.abs(values) <= tol] = 0.0
                    if values.max() <= 0:
                        next_parts.append((poly, (*bits, 0)))
                    elif values.min() >= 0:
                        next_parts.append((poly, (*bits, 1)))
                    else:
                        on, off = _split_polygon(poly, values)
                        next_parts += [(on, (*bits, 1)), (off, (*bits, 0))]
                parts = next_parts
            for poly, bits in parts:
                mask = np.array(bits, dtype=float)
                refined.append((poly, m * mask[:, None], c * mask, pattern + bits))
        regions = refined
    return [(v, pattern) for v, _, _, pattern in regions]


def sawtooth_network_2d(
    n_hidden: int, dtype: torch.dtype = torch.float64
) -> nn.Sequential:
    """f_L(x_1) + f_L(x_2) as a ReLU network, ``n_hidden`` hidden layers of four units.

    Two copies of :func:`sawtooth_network` side by side, one per input, whose
    output layers add up; on [-2, 2]^2 it has ``4**L`` linear regions, a grid of
    ``2**L`` by ``2**L`` cells.
    """
    from scipy.linalg import block_diag

    n_hidden = check_int("n_hidden", n_hidden, minimum=1)
    weights, biases = _sawtooth_layers(n_hidden)
    pairs = [block_diag(w, w) for w in weights[:-1]]
    pairs.append(np.hstack([weights[-1], weights[-1]]))
    both = [np.tile(b, 2) for b in biases[:-1]] + [2 * biases[-1]]
    return _network(pairs, both, dtype=dtype)


def plot_regions(ax, regions, seed: int = 0) -> None:
    """Fill each region with its own colour (shuffled so that neighbours differ).

    ``regions`` is the list returned by :func:`linear_regions_2d`.
    """
    seed = check_int("seed", seed, minimum=0)
    if len(regions) == 0:
        raise ValueError("regions must hold at least one region, got none")
    from matplotlib import colormaps
    from matplotlib.collections import PolyCollection

    order = numpy_generator(seed).permutation(len(regions))
    palette = colormaps["tab20"](np.arange(20))
    face = palette[order % 20]
    ax.add_collection(
        PolyCollection(
            [v for v, _ in regions], facecolors=face, edgecolors="white", linewidths=0.3
        )
    )
    corners = np.concatenate([v for v, _ in regions])
    ax.set_xlim(corners[:, 0].min(), corners[:, 0].max())
    ax.set_ylim(corners[:, 1].min(), corners[:, 1].max())
    ax.set_aspect("equal")
    ax.grid(False)
