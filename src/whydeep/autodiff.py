"""Forward and reverse mode: what the chain rule costs, and back-propagation by hand.

A composition ``f_L ∘ … ∘ f_1`` with dimensions ``d_0, …, d_L`` has the Jacobian
``J_L ⋯ J_1`` where ``J_l`` has shape ``(d_l, d_{l-1})``. Which order the product is
taken in decides the cost: from the input side (forward mode), from the output side
(reverse mode), or any other bracketing (the matrix-chain problem). This module
counts those costs, measures them on PyTorch's ``torch.func`` transforms, computes
Hessian-vector products, checks the scalar engine of :mod:`whydeep.engine` against
``torch.autograd``, and holds a NumPy network with hand-derived gradients.

A bracketing of the factors ``J_L ⋯ J_1`` is a binary tree: a leaf is the factor's
index ``l`` (1-based) and a pair ``(left, right)`` is the product ``left @ right``,
where ``left`` covers the higher indices (the output side).
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import timeit
import weakref
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.func import functional_call, grad, hessian, jvp
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from ._checks import check_float, check_int, numpy_generator, torch_generator
from ._runtime import single_thread
from .engine import Scalar

# ---------------------------------------------------------------------------
# Chains of Jacobians: counting multiply-adds
# ---------------------------------------------------------------------------


def check_dims(dims: Sequence[int]) -> list[int]:
    """Return ``dims`` as a list of positive ints ``[d_0, …, d_L]`` with ``L >= 1``."""
    try:
        dims = list(dims)
    except TypeError:
        raise ValueError(f"dims must be a sequence of integers, got {dims!r}") from None
    if len(dims) < 2:
        raise ValueError(
            f"dims must list d_0, ..., d_L (at least one factor), got {dims!r}"
        )
    return [check_int(f"dims[{i}]", d, minimum=1) for i, d in enumerate(dims)]


def forward_cost(dims: Sequence[int]) -> int:
    """Multiply-adds of ``J_L (⋯ (J_3 (J_2 J_1)))``: ``d_0 Σ_{l=2}^{L} d_l d_{l-1}``."""
    d = check_dims(dims)
    return d[0] * sum(d[k] * d[k - 1] for k in range(2, len(d)))


def reverse_cost(dims: Sequence[int]) -> int:
    """Multiply-adds of ``((J_L J_{L-1}) ⋯) J_1``: ``d_L Σ_{l=0}^{L-2} d_l d_{l+1}``."""
    d = check_dims(dims)
    return d[-1] * sum(d[k] * d[k + 1] for k in range(len(d) - 2))


def pass_cost(dims: Sequence[int]) -> int:
    """Multiply-adds of a vector through every factor: ``P = Σ_{l=1}^{L} d_l d_{l-1}``.

    This is the cost of one pass through a network whose layers are dense
    ``d_{l-1} → d_l`` maps, and of one Jacobian-vector or vector-Jacobian product.
    """
    d = check_dims(dims)
    return sum(a * b for a, b in itertools.pairwise(d))


def forward_bracketing(n_factors: int):
    """The tree of forward mode, ``(L, (L-1, ⋯ (2, 1)))``."""
    n = check_int("n_factors", n_factors, minimum=1)
    return functools.reduce(lambda tree, factor: (factor, tree), range(2, n + 1), 1)


def reverse_bracketing(n_factors: int):
    """The tree of reverse mode, ``(((L, L-1), L-2) ⋯, 1)``."""
    n = check_int("n_factors", n_factors, minimum=1)
    return functools.reduce(lambda tree, factor: (tree, factor), range(n - 1, 0, -1), n)


def _span_and_cost(dims: list[int], tree) -> tuple[int, int, int]:
    """Lowest and highest factor index covered by ``tree``, and its multiply-adds."""
    if isinstance(tree, int) and not isinstance(tree, bool):
        if not 1 <= tree <= len(dims) - 1:
            raise ValueError(
                f"tree leaf must be a factor index in 1..{len(dims) - 1}, got {tree}"
            )
        return tree, tree, 0
    if not (isinstance(tree, tuple) and len(tree) == 2):
        raise ValueError(
            f"tree must be a factor index or a pair of trees, got {tree!r}"
        )
    lo_left, hi_left, cost_left = _span_and_cost(dims, tree[0])
    lo_right, hi_right, cost_right = _span_and_cost(dims, tree[1])
    if lo_left != hi_right + 1:
        raise ValueError(
            f"tree must multiply adjacent factors, the left one of higher index, "
            f"got {tree!r}"
        )
    # (d_hi x d_mid) @ (d_mid x d_lo): one multiply-add per (row, column, inner index)
    product = dims[hi_left] * dims[hi_right] * dims[lo_right - 1]
    return lo_right, hi_left, cost_left + cost_right + product


def bracketing_cost(dims: Sequence[int], tree) -> int:
    """Multiply-adds of evaluating ``J_L ⋯ J_1`` in the order given by ``tree``.

    Parameters
    ----------
    dims : sequence of int
        ``[d_0, …, d_L]``; factor ``J_l`` has shape ``(d_l, d_{l-1})``.
    tree : int or nested pairs
        A bracketing covering every factor ``1 … L`` exactly once, in order.
    """
    d = check_dims(dims)
    lo, hi, cost = _span_and_cost(d, tree)
    if (lo, hi) != (1, len(d) - 1):
        raise ValueError(f"tree must cover factors 1..{len(d) - 1}, covers {lo}..{hi}")
    return cost


def optimal_bracketing(dims: Sequence[int]):
    """The cheapest bracketing of ``J_L ⋯ J_1`` by dynamic programming (matrix chain).

    ``best[i][j]``, the cheapest cost of ``J_j ⋯ J_i``, is the minimum over the last
    split ``k`` of ``best[i][k] + best[k+1][j] + d_j d_k d_{i-1}``: ``O(L^3)`` work
    instead of the Catalan number of bracketings.

    Returns
    -------
    cost : int
        Multiply-adds of the cheapest order.
    tree : int or nested pairs
        A bracketing that attains it (ties go to the lowest split).
    """
    d = check_dims(dims)
    n = len(d) - 1
    best = [[0] * (n + 2) for _ in range(n + 2)]
    split = [[0] * (n + 2) for _ in range(n + 2)]
    for length in range(2, n + 1):
        for i in range(1, n - length + 2):
            j = i + length - 1
            # (cost, k) pairs: equal costs go to the lower k
            best[i][j], split[i][j] = min(
                (best[i][k] + best[k + 1][j] + d[j] * d[k] * d[i - 1], k)
                for k in range(i, j)
            )

    def build(i: int, j: int):
        if i == j:
            return i
        k = split[i][j]
        return (build(k + 1, j), build(i, k))

    return int(best[1][n]), build(1, n)


def format_bracketing(tree) -> str:
    """A bracketing as text: forward mode with three factors is ``J3 (J2 J1)``."""

    def text(t, top: bool) -> str:
        if isinstance(t, int):
            return f"J{t}"
        inner = f"{text(t[0], False)} {text(t[1], False)}"
        return inner if top else f"({inner})"

    return text(tree, True)


def multiply_chain(jacobians: Sequence[np.ndarray], tree) -> tuple[np.ndarray, int]:
    """Evaluate ``J_L ⋯ J_1`` in the order of ``tree``, counting multiply-adds.

    Parameters
    ----------
    jacobians : sequence of 2-D arrays
        ``[J_1, …, J_L]`` with ``J_l`` of shape ``(d_l, d_{l-1})``.
    tree : int or nested pairs
        The bracketing, as in :func:`bracketing_cost`.

    Returns
    -------
    product : ndarray, shape (d_L, d_0)
    n_multiply_adds : int
        Counted from the shapes of the products actually formed.
    """
    jacobians = [np.asarray(j) for j in jacobians]
    if not jacobians:
        raise ValueError("jacobians must hold at least one matrix, got an empty chain")
    for k, jac in enumerate(jacobians, start=1):
        if jac.ndim != 2:
            raise ValueError(f"jacobians[{k - 1}] must be 2-D, got shape {jac.shape}")
        if k > 1 and jac.shape[1] != jacobians[k - 2].shape[0]:
            raise ValueError(
                f"J_{k} has shape {jac.shape} but J_{k - 1} has shape "
                f"{jacobians[k - 2].shape}: its columns must equal their rows"
            )
    dims = [jacobians[0].shape[1]] + [j.shape[0] for j in jacobians]
    bracketing_cost(dims, tree)  # validates the tree against the chain
    count = 0

    def evaluate(t) -> np.ndarray:
        nonlocal count
        if isinstance(t, int):
            return jacobians[t - 1]
        left, right = evaluate(t[0]), evaluate(t[1])
        count += left.shape[0] * left.shape[1] * right.shape[1]
        return left @ right

    return evaluate(tree), count


# ---------------------------------------------------------------------------
# Measuring torch.func on tanh networks
# ---------------------------------------------------------------------------


def _random_weights(dims, gen, dtype=torch.float64) -> list[torch.Tensor]:
    """Matrices ``W_l`` of shape ``(d_{l-1}, d_l)`` with entries ``N(0, 1/d_{l-1})``."""
    return [
        torch.randn(a, b, generator=gen, dtype=dtype) / math.sqrt(a)
        for a, b in itertools.pairwise(dims)
    ]


def random_tanh_layers(
    dims: Sequence[int], seed: int = 0, dtype: torch.dtype = torch.float64
) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """Layers ``f_l(h) = tanh(h W_l)`` (the last one linear) of a random network.

    ``W_l`` has shape ``(d_{l-1}, d_l)`` and entries ``N(0, 1/d_{l-1})``. Each layer
    maps a vector of shape ``(d_{l-1},)`` or a batch ``(n, d_{l-1})`` to ``d_l``.
    """
    weights = _random_weights(check_dims(dims), torch_generator(seed), dtype)

    def make(w: torch.Tensor, last: bool):
        return (lambda h: h @ w) if last else (lambda h: torch.tanh(h @ w))

    return [make(w, i == len(weights) - 1) for i, w in enumerate(weights)]


def compose(layers: Sequence[Callable]) -> Callable:
    """The composition ``f_L ∘ … ∘ f_1`` of ``layers = [f_1, …, f_L]``."""
    layers = list(layers)
    if not layers:
        raise ValueError("layers must hold at least one function, got an empty chain")

    def composed(x):
        for layer in layers:
            x = layer(x)
        return x

    return composed


def layer_jacobians(layers: Sequence[Callable], x: torch.Tensor) -> list[torch.Tensor]:
    """Jacobians ``[J_1, …, J_L]`` of each layer at the point the forward pass visits.

    ``x`` has shape ``(d_0,)``; ``J_l`` has shape ``(d_l, d_{l-1})``.
    """
    if x.dim() != 1:
        raise ValueError(
            f"x must be a vector of shape (d_0,), got shape {tuple(x.shape)}"
        )
    jacobians = []
    for layer in layers:
        jacobians.append(torch.func.jacrev(layer)(x))
        x = layer(x)
    return jacobians


def count_multiply_adds(fn: Callable, *args) -> int:
    """Multiply-adds of the matrix products in ``fn(*args)`` (PyTorch's FLOP count / 2).

    Element-wise work (``tanh`` and its derivative) is not counted; for dense layers
    it is a lower-order term.
    """
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return counter.get_total_flops() // 2


def weight_gradient_ops(dims: Sequence[int], seed: int = 0) -> int:
    """Counted multiply-adds of the gradient of a scalar loss with respect to every
    weight matrix of the tanh network ``dims`` (one sample, no biases).

    Forward, ``P = Σ d_{l-1} d_l``; backward, per layer, ``a_{l-1}ᵀ δ_l`` for the
    weights and ``δ_l W_lᵀ`` for the layer below (not needed below the first
    layer): ``3P - d_0 d_1`` in all.
    """
    dims = check_dims(dims)
    gen = torch_generator(seed)
    weights = [w.requires_grad_(True) for w in _random_weights(dims, gen)]
    x = torch.randn(1, dims[0], generator=gen, dtype=torch.float64)

    def gradient():
        loss = torch.logsumexp(_run_chain(x, weights[:-1]) @ weights[-1], dim=1).sum()
        return torch.autograd.grad(loss, weights)

    return count_multiply_adds(gradient)


def min_time(fn: Callable, *args, repeats: int = 3) -> float:
    """Least wall-clock seconds over ``repeats`` calls, after one warm-up call
    (timed by :func:`timeit.repeat`, which pauses garbage collection)."""
    repeats = check_int("repeats", repeats, minimum=1)
    fn(*args)
    return min(timeit.repeat(lambda: fn(*args), number=1, repeat=repeats))


_SWEEP_KEYS = ("forward_ops", "reverse_ops", "forward_time", "reverse_time", "pass")


def _check_ints(name: str, values, what: str, **bounds) -> list[int]:
    """``values`` as a non-empty list of ints within ``bounds`` (of :func:`check_int`)."""
    values = [check_int(f"{name}[{i}]", v, **bounds) for i, v in enumerate(values)]
    if not values:
        raise ValueError(f"{name} must list at least one {what}, got []")
    return values


def jacobian_sweep(
    dims_list: Sequence[Sequence[int]], *, repeats: int = 3, seed: int = 0
):
    """Count and time ``jacfwd`` and ``jacrev`` of random tanh networks.

    Parameters
    ----------
    dims_list : sequence of dims
        One network ``[d_0, …, d_L]`` per entry.
    repeats : int
        Timing repeats (the minimum is kept).

    Returns
    -------
    dict of ndarray, each of shape (len(dims_list),)
        ``'forward_ops'``, ``'reverse_ops'``: counted multiply-adds of the full
        Jacobian at one input of shape ``(1, d_0)``; ``'forward_time'``,
        ``'reverse_time'``: seconds; ``'pass'``: :func:`pass_cost` of each network.
    """
    dims_list = [check_dims(d) for d in dims_list]
    if not dims_list:
        raise ValueError("dims_list must name at least one network, got []")
    out = defaultdict(list)
    with single_thread():
        for dims in dims_list:
            f = compose(random_tanh_layers(dims, seed=seed))
            gen = torch_generator(seed)
            x = torch.randn(1, dims[0], dtype=torch.float64, generator=gen)
            jac_fwd, jac_rev = torch.func.jacfwd(f), torch.func.jacrev(f)
            out["forward_ops"].append(count_multiply_adds(jac_fwd, x))
            out["reverse_ops"].append(count_multiply_adds(jac_rev, x))
            out["forward_time"].append(min_time(jac_fwd, x, repeats=repeats))
            out["reverse_time"].append(min_time(jac_rev, x, repeats=repeats))
            out["pass"].append(pass_cost(dims))
    return {k: np.array(v) for k, v in out.items()}


class _Held:
    """One saved tensor, as autograd's graph holds it until backward frees it."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


class _LiveStorages(TorchDispatchMode):
    """Bytes of the tensor storages held right now, each counted once, and their peak.

    Entered as a dispatch mode, it follows every tensor created inside it until
    the tensor's last reference goes (:func:`peak_live_bytes`). As autograd's
    saved-tensor hooks (:meth:`pack`, :meth:`unpack`), it follows the bytes the
    graph holds for backward (:func:`saved_bytes`): every tensor saved is wrapped
    in a :class:`_Held`, which the graph keeps until the backward pass has used it
    (then frees it). A storage counts once however many times it is held, and only
    while something holds it: while it is held it cannot be freed, so its address
    cannot be reused. Saved tensors on the storages of ``exclude`` are not counted.
    """

    def __init__(self, exclude: Sequence[torch.Tensor] = ()) -> None:
        super().__init__()
        self._refs: dict[int, list[int]] = {}
        self._skip = {t.untyped_storage().data_ptr() for t in exclude}
        self.live = self.peak = 0

    def hold(self, tensor: torch.Tensor, owner) -> None:
        """Count the storage of ``tensor`` until ``owner`` is freed."""
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key not in self._refs:
            self._refs[key] = [0, storage.nbytes()]
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        self._refs[key][0] += 1
        weakref.finalize(owner, self._release, key)

    def _release(self, key: int) -> None:
        entry = self._refs[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self._refs[key]

    def pack(self, tensor: torch.Tensor):
        if tensor.untyped_storage().data_ptr() in self._skip:
            return tensor
        held = _Held(tensor)
        self.hold(tensor, held)
        return held

    @staticmethod
    def unpack(packed):
        return packed.tensor if isinstance(packed, _Held) else packed

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            # zero tensors (PyTorch's stand-in for "no tangent") own no memory
            if isinstance(t, torch.Tensor) and not t._is_zerotensor():
                self.hold(t, t)
        return out


def saved_bytes(
    forward: Callable, *args, exclude: Sequence[torch.Tensor] = ()
) -> dict[str, int]:
    """Bytes autograd holds for the backward pass of ``forward(*args)``.

    Runs ``out = forward(*args)`` (a scalar), then the backward pass
    ``torch.autograd.grad(out, inputs)`` for the arguments that require grad,
    and follows the bytes of the tensors the graph holds for backward: each is
    counted from the moment it is saved until the backward pass frees it, a
    storage saved twice once, and the storages of ``exclude`` (weights, data:
    memory that exists anyway) not at all.

    Returns
    -------
    dict
        ``'peak_forward'``: the most held at once during the forward pass;
        ``'end_of_forward'``: bytes held when the forward pass returns;
        ``'peak_backward'``: the most held at once during the backward pass;
        ``'after_backward'``: bytes still held at the end (0 unless leaked).
    """
    inputs = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
    ledger = _LiveStorages(exclude)
    with torch.autograd.graph.saved_tensors_hooks(ledger.pack, ledger.unpack):
        out = forward(*args)
        if out.numel() != 1:
            raise ValueError(
                f"forward must return a scalar, got shape {tuple(out.shape)}"
            )
        peak_forward = ledger.peak
        held = ledger.peak = ledger.live  # the backward pass starts from here
        if inputs and out.requires_grad:
            torch.autograd.grad(out, inputs)
        del out
    return {
        "peak_forward": peak_forward,
        "end_of_forward": held,
        "peak_backward": ledger.peak,
        "after_backward": ledger.live,
    }


def peak_live_bytes(fn: Callable, *args) -> int:
    """Peak bytes of tensors created by ``fn(*args)`` that are alive at the same time.

    Tensors that exist before the call (weights, inputs) are not counted; a
    tensor's memory is returned when its last reference goes, so what a backward
    pass keeps alive shows up here and what forward mode discards does not.
    """
    with _LiveStorages() as tracker:
        fn(*args)
    return tracker.peak


def _tanh_chain(n_layers: int, width: int, n_samples: int, gen) -> tuple:
    """``n_layers`` tanh layers of ``width`` units (weights σ = 1), an output
    weight vector, and a batch of inputs, in float64."""
    weights = _random_weights([width] * (n_layers + 1), gen)
    out = torch.randn(width, 1, generator=gen, dtype=torch.float64)
    x = torch.randn(n_samples, width, generator=gen, dtype=torch.float64)
    return weights, out, x


def _run_chain(h: torch.Tensor, weights: Sequence[torch.Tensor]) -> torch.Tensor:
    for w in weights:
        h = torch.tanh(h @ w)
    return h


def memory_sweep(
    n_layers: Sequence[int], *, width: int = 256, n_samples: int = 128, seed: int = 0
) -> dict[str, np.ndarray]:
    """Memory of one reverse pass against one forward pass, for growing depth.

    Network ``k`` maps ``width`` inputs through ``n_layers[k]`` tanh layers of
    ``width`` units and an output weight vector to one number per sample (depth
    ``n_layers[k] + 1`` in the book's count), on a batch of ``n_samples``
    (float64). Reverse mode is the gradient of the summed output with respect to
    the batch; forward mode is its derivative along one direction
    (``torch.func.jvp``): both cost a few passes.

    Returns
    -------
    dict of ndarray, each of shape (len(n_layers),)
        ``'saved'``: bytes autograd holds for backward at the end of the forward
        pass (weights and data excluded, see :func:`saved_bytes`);
        ``'predicted'``: one ``(n_samples, width)`` activation per tanh layer;
        ``'peak_reverse'``, ``'peak_forward'``: :func:`peak_live_bytes` of each pass;
        ``'saved_forward'``: the most bytes forward mode holds at once for a
        backward pass (none).
    """
    n_layers = _check_ints("n_layers", n_layers, "number of layers", minimum=1)
    width = check_int("width", width, minimum=1)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    gen = torch_generator(seed)
    rows = [_chain_memory(*_tanh_chain(n, width, n_samples, gen)) for n in n_layers]
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def _chain_memory(weights, w_out, x) -> dict[str, int]:
    """One entry of :func:`memory_sweep`."""
    direction = torch.ones_like(x)

    def net(h):
        return (_run_chain(h, weights) @ w_out).sum()

    def forward(x):
        return jvp(net, (x,), (direction,))[1]

    exclude = [*weights, w_out, x]
    x.requires_grad_(True)
    saved = saved_bytes(net, x, exclude=exclude)["end_of_forward"]
    peak_reverse = peak_live_bytes(lambda x: torch.autograd.grad(net(x), x), x)
    x.requires_grad_(False)
    return {
        "saved": saved,
        "predicted": len(weights) * x.numel() * x.element_size(),
        "peak_reverse": peak_reverse,
        "saved_forward": saved_bytes(forward, x, exclude=exclude)["peak_forward"],
        "peak_forward": peak_live_bytes(forward, x),
    }


# ---------------------------------------------------------------------------
# Checkpointing: memory for recomputation
# ---------------------------------------------------------------------------


def chain_gradient(
    weights: Sequence[torch.Tensor], x: torch.Tensor, segment: int | None = None
) -> torch.Tensor:
    """The gradient of ``tanh(⋯ tanh(x W_1) ⋯ W_L).sum()`` with respect to ``x``.

    With ``segment=k`` (checkpointing) the forward pass runs without recording
    and keeps only the inputs of segments of ``k`` layers; the last segment
    (``L - k (s - 1)`` layers, ``s = ⌈L/k⌉``) is recorded as usual. The backward
    pass then takes the segments from last to first, recomputing each one from
    its stored input, with recording, just before pulling the cotangent back
    through it, and dropping it afterwards. ``segment=None`` (or ``L``) is plain
    reverse mode.

    Memory: ``s - 1`` stored inputs and the ``k`` activations of one segment,
    instead of ``L`` activations; arithmetic: one pass over the first
    ``L - k_last`` layers more than plain reverse mode.
    """
    n = len(weights)
    if n == 0:
        raise ValueError("weights must hold at least one matrix, got none")
    k = n if segment is None else min(check_int("segment", segment, minimum=1), n)
    starts = list(range(0, n, k))  # the first layer of every segment
    last = starts[-1]
    stored = []
    with torch.no_grad():
        h = x
        for start in starts[:-1]:
            stored.append(h)
            h = _run_chain(h, weights[start : start + k])
    h_in = x if last == 0 else h.detach().requires_grad_(True)
    del h
    (cotangent,) = torch.autograd.grad(_run_chain(h_in, weights[last:]).sum(), h_in)
    del h_in
    for start in reversed(starts[:-1]):
        h_in = stored.pop()
        if start > 0:
            h_in = h_in.detach().requires_grad_(True)
        h_out = _run_chain(h_in, weights[start : start + k])
        (cotangent,) = torch.autograd.grad(h_out, h_in, cotangent)
        del h_in, h_out
    return cotangent


def checkpoint_sweep(
    n_layers: int,
    segments: Sequence[int],
    *,
    width: int = 256,
    n_samples: int = 128,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Peak memory and arithmetic of :func:`chain_gradient` for each segment length.

    One chain of ``n_layers`` tanh layers of ``width`` units, on a batch of
    ``n_samples`` (float64). ``A = n_samples · width · 8`` bytes is one activation
    and ``F = n_samples · width²`` multiply-adds one layer's product.

    Returns
    -------
    dict of ndarray, each of shape (len(segments),)
        ``'peak'``: :func:`peak_live_bytes` of the whole gradient computation;
        ``'stored'``: ``s - 1 + k`` activations, in bytes (the schedule's count,
        ``s = ⌈L/k⌉`` segments of ``k`` layers);
        ``'multiply_adds'``: counted; ``'predicted_ops'``: ``(2L + L - k_last) F``,
        forward, backward and the recomputation of all but the last segment;
        ``'max_error'``: largest ``|gradient - plain reverse-mode gradient|``.
    """
    n = check_int("n_layers", n_layers, minimum=1)
    segments = _check_ints("segments", segments, "segment length", minimum=1, maximum=n)
    width = check_int("width", width, minimum=1)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    weights, _, x = _tanh_chain(n, width, n_samples, torch_generator(seed))
    x.requires_grad_(True)
    activation = n_samples * width * x.element_size()
    layer_ops = n_samples * width * width
    reference = chain_gradient(weights, x)
    out = defaultdict(list)
    for k in segments:
        s = -(-n // k)
        k_last = n - k * (s - 1)
        out["peak"].append(peak_live_bytes(chain_gradient, weights, x, k))
        out["stored"].append((s - 1 + k) * activation)
        out["multiply_adds"].append(count_multiply_adds(chain_gradient, weights, x, k))
        out["predicted_ops"].append((3 * n - k_last) * layer_ops)
        error = (chain_gradient(weights, x, k) - reference).abs().max().item()
        out["max_error"].append(error)
    return {key: np.array(v) for key, v in out.items()}


# ---------------------------------------------------------------------------
# Hessian-vector products
# ---------------------------------------------------------------------------


def flat_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    """The mean squared error of ``model`` as a function of one flat parameter vector.

    Returns
    -------
    loss : callable
        ``loss(w)`` with ``w`` of shape ``(n_params,)``.
    w0 : Tensor, shape (n_params,)
        The model's current parameters, flattened (a detached copy).
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must be (n_samples, n_in) and (n_samples, n_out), "
            f"got shapes {tuple(x.shape)} and {tuple(y.shape)}"
        )
    names, params = zip(*model.named_parameters(), strict=True)
    shapes, sizes = [p.shape for p in params], [p.numel() for p in params]
    w0 = torch.cat([p.detach().reshape(-1) for p in params]).clone()

    def loss(w: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(w, sizes)
        values = {
            n: piece.reshape(s)
            for n, piece, s in zip(names, pieces, shapes, strict=True)
        }
        return torch.mean((functional_call(model, values, (x,)) - y) ** 2)

    return loss, w0


def _check_vectors(w: torch.Tensor, v: torch.Tensor) -> None:
    if w.dim() != 1 or v.shape != w.shape:
        raise ValueError(
            f"w and v must be vectors of the same shape, "
            f"got {tuple(w.shape)} and {tuple(v.shape)}"
        )


def hvp_forward_over_reverse(
    loss: Callable, w: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """``H v`` as the derivative of the gradient along ``v``: ``jvp(grad(loss))``."""
    _check_vectors(w, v)
    return jvp(grad(loss), (w,), (v,))[1]


def hvp_reverse_over_reverse(
    loss: Callable, w: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """``vᵀ H`` as the gradient of the scalar ``vᵀ ∇loss(w)``."""
    _check_vectors(w, v)
    return grad(lambda u: torch.dot(grad(loss)(u), v))(w)


def hessian_matrix(loss: Callable, w: torch.Tensor) -> torch.Tensor:
    """The explicit Hessian, shape ``(n_params, n_params)`` (one HVP per column)."""
    if w.dim() != 1:
        raise ValueError(f"w must be a vector, got shape {tuple(w.shape)}")
    return hessian(loss)(w)


def hvp_costs(
    loss: Callable, w: torch.Tensor, *, repeats: int = 5, seed: int = 0
) -> dict:
    """Counted multiply-adds and wall-clock seconds of the loss, its gradient and
    both Hessian-vector products at ``w`` (one thread, minimum over ``repeats``).

    Returns
    -------
    dict
        ``{'loss' | 'gradient' | 'forward-over-reverse' | 'reverse-over-reverse':
        (multiply_adds, seconds)}``.
    """
    gen = torch_generator(seed)
    v = torch.randn(w.shape, generator=gen, dtype=w.dtype)
    calls = {
        "loss": (loss, w),
        "gradient": (grad(loss), w),
        "forward-over-reverse": (hvp_forward_over_reverse, loss, w, v),
        "reverse-over-reverse": (hvp_reverse_over_reverse, loss, w, v),
    }
    with single_thread():
        return {
            name: (count_multiply_adds(*call), min_time(*call, repeats=repeats))
            for name, call in calls.items()
        }


def top_hessian_eigenvalue(
    loss: Callable,
    w: torch.Tensor,
    *,
    n_iter: int = 200,
    tol: float = 1e-10,
    seed: int = 0,
) -> tuple[float, int]:
    """Eigenvalue of largest magnitude of the Hessian at ``w`` by power iteration.

    Each iteration costs one Hessian-vector product; the Hessian is never formed.
    Stops when the Rayleigh quotient changes by less than ``tol`` (relative).

    Returns
    -------
    eigenvalue : float
    n_iterations : int
    """
    if w.dim() != 1:
        raise ValueError(f"w must be a vector, got shape {tuple(w.shape)}")
    n_iter = check_int("n_iter", n_iter, minimum=1)
    tol = check_float("tol", tol, positive=True)
    gen = torch_generator(seed)
    v = torch.randn(w.shape, generator=gen, dtype=w.dtype)
    v = v / v.norm()
    eigenvalue = 0.0
    for it in range(1, n_iter + 1):
        hv = hvp_forward_over_reverse(loss, w, v)
        new = float(torch.dot(v, hv))
        v = hv / hv.norm()
        if abs(new - eigenvalue) <= tol * abs(new):
            return new, it
        eigenvalue = new
    return eigenvalue, n_iter


# ---------------------------------------------------------------------------
# Random expressions for the scalar engine (whydeep.engine)
# ---------------------------------------------------------------------------


OPERATIONS = ("add", "mul", "pow", "tanh", "relu")


def random_program(n_inputs: int, n_ops: int, seed: int = 0) -> list[tuple]:
    """A random expression as a list of ``(operation, operand, operand_or_exponent)``.

    Node ``i < n_inputs`` is input ``i``; operation ``k`` creates node ``n_inputs + k``
    from earlier nodes. The last node is the output.
    """
    n_inputs = check_int("n_inputs", n_inputs, minimum=1)
    n_ops = check_int("n_ops", n_ops, minimum=1)
    rng = numpy_generator(seed)
    program = []
    for k in range(n_ops):
        n_nodes = n_inputs + k
        op = OPERATIONS[rng.integers(len(OPERATIONS))]
        # often take the newest node, so the output depends on most of the graph
        a = n_nodes - 1 if rng.random() < 0.5 else int(rng.integers(n_nodes))
        b = int(rng.integers(n_nodes))
        if op == "pow":
            b = int(rng.choice([2, 3]))
        program.append((op, a, b))
    return program


def run_program(program: Sequence[tuple], inputs: Sequence):
    """Evaluate ``program`` on ``inputs`` (:class:`Scalar` objects or torch scalars)."""
    nodes = list(inputs)
    for op, a, b in program:
        if op not in OPERATIONS:
            raise ValueError(f"operation must be one of {OPERATIONS}, got {op!r}")
        if op in ("tanh", "relu"):
            nodes.append(getattr(nodes[a], op)())
        else:  # the second operand of pow is its exponent, of add and mul a node
            nodes.append(
                getattr(operator, op)(nodes[a], b if op == "pow" else nodes[b])
            )
    return nodes[-1]


def engine_vs_autograd(
    n_expressions: int, *, n_inputs: int = 4, n_ops: int = 12, seed: int = 0
) -> float:
    """Largest |gradient of :class:`Scalar` − gradient of ``torch.autograd``| (float64)
    over ``n_expressions`` random expressions at random inputs in [-1, 1]."""
    n_expressions = check_int("n_expressions", n_expressions, minimum=1)
    rng = numpy_generator(seed)
    worst = 0.0
    for k in range(n_expressions):
        program = random_program(n_inputs, n_ops, seed=seed + k)
        values = rng.uniform(-1.0, 1.0, size=n_inputs)
        scalars = [Scalar(v) for v in values]
        run_program(program, scalars).backward()
        tensors = [
            torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values
        ]
        out = run_program(program, tensors)
        grads = torch.autograd.grad(out, tensors, allow_unused=True)
        for s, g in zip(scalars, grads, strict=True):
            worst = max(worst, abs(s.grad - (0.0 if g is None else float(g))))
    return worst


# ---------------------------------------------------------------------------
# Back-propagation by hand: a NumPy network on the 8x8 digits
# ---------------------------------------------------------------------------

DIGITS_SIZES = (64, 32, 32, 10)


def init_params(sizes: Sequence[int] = DIGITS_SIZES, seed: int = 0) -> list[np.ndarray]:
    """``[W_1, b_1, …, W_L, b_L]`` with ``W_l ~ N(0, 1/max(n_in, n_out))`` of shape
    ``(n_in, n_out)`` and zero biases."""
    sizes = check_dims(sizes)
    rng = numpy_generator(seed)
    params = []
    for n_in, n_out in itertools.pairwise(sizes):
        scale = 1.0 / math.sqrt(max(n_in, n_out))
        params += [rng.normal(0.0, scale, size=(n_in, n_out)), np.zeros(n_out)]
    return params


def _check_params(params, depth: int | None = None) -> None:
    """``params`` must be ``[W1, b1, …]`` with matching shapes (and ``depth`` layers)."""
    if len(params) < 2 or len(params) % 2 or (depth and len(params) != 2 * depth):
        expected = f"{2 * depth} arrays" if depth else "an even number >= 2 of arrays"
        raise ValueError(
            f"params must be [W1, b1, ...] with {expected}, got {len(params)}"
        )
    for k in range(0, len(params), 2):
        w, b = np.shape(params[k]), np.shape(params[k + 1])
        if len(w) != 2 or b != (w[1],) or (k and w[0] != np.shape(params[k - 2])[1]):
            raise ValueError(
                f"params[{k}] and params[{k + 1}] must be a weight (n_in, n_out) and a "
                f"bias (n_out,) that fit the previous layer, got shapes {w} and {b}"
            )


def _check_labels(name: str, labels, n_classes: int) -> np.ndarray:
    """``labels`` must be integers in ``0 .. n_classes - 1``."""
    labels = np.asarray(labels)
    outside = labels.size > 0 and (labels.min() < 0 or labels.max() >= n_classes)
    if labels.dtype.kind not in "iu" or outside:
        raise ValueError(
            f"{name} must hold integer labels in 0..{n_classes - 1}, got {labels!r}"
        )
    return labels


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^{-z})`` without overflow for large ``|z|``."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the maximum so ``exp`` cannot overflow."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _layer_outputs(params: Sequence[np.ndarray], x: np.ndarray) -> list[np.ndarray]:
    """``[x, a_1, …, a_{L-1}, p]``: sigmoid hidden layers, softmax output."""
    outputs = [x]
    for k in range(0, len(params), 2):
        z = outputs[-1] @ params[k] + params[k + 1]
        outputs.append(sigmoid(z) if k < len(params) - 2 else softmax(z))
    return outputs


def predict_proba(params: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Class probabilities, shape ``(n_samples, n_classes)``, for ``x`` of shape
    ``(n_samples, n_in)``: sigmoid hidden layers, softmax output."""
    _check_params(params)
    return _layer_outputs(params, x)[-1]


def accuracy(params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of samples whose most probable class is the label."""
    return float(np.mean(predict_proba(params, x).argmax(axis=1) == y))


def mean_cross_entropy(
    params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray
) -> float:
    """``mean_n −log p_{y_n}(x_n)``."""
    p = predict_proba(params, x)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def sample_gradients(params: Sequence[np.ndarray], x: np.ndarray, label: int):
    """Loss and gradients for one sample, written out layer by layer (three layers).

    Parameters
    ----------
    params : [W1, b1, W2, b2, W3, b3]
    x : ndarray, shape (n_in,)
    label : int

    Returns
    -------
    loss : float
        ``−log p_label``.
    grads : list of ndarray
        Same shapes as ``params``.
    """
    _check_params(params, depth=3)
    label = int(_check_labels("label", label, len(params[-1])))
    w1, b1, w2, b2, w3, b3 = params
    a1 = sigmoid(x @ w1 + b1)
    a2 = sigmoid(a1 @ w2 + b2)
    p = softmax(a2 @ w3 + b3)
    delta3 = p.copy()  # dℓ/dz3 = p − e_label
    delta3[label] -= 1.0
    delta2 = (w3 @ delta3) * a2 * (1.0 - a2)  # dℓ/dz2 = (W3 δ3) ⊙ σ'(z2)
    delta1 = (w2 @ delta2) * a1 * (1.0 - a1)  # dℓ/dz1 = (W2 δ2) ⊙ σ'(z1)
    grads = [
        np.outer(x, delta1),
        delta1,
        np.outer(a1, delta2),
        delta2,
        np.outer(a2, delta3),
        delta3,
    ]
    return float(-np.log(p[label])), grads


def batch_gradients(params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray):
    """Mean loss and its gradients over a batch: the same recursion as
    :func:`sample_gradients` with one row per sample, for any number of layers.

    Parameters
    ----------
    params : [W1, b1, …, WL, bL]
    x : ndarray, shape (n_samples, n_in)
    y : ndarray of int, shape (n_samples,)
    """
    _check_params(params)
    y = _check_labels("y", y, len(params[-1]))
    if len(x) != len(y):
        raise ValueError(
            f"x and y must hold as many samples, got {len(x)} and {len(y)}"
        )
    depth = len(params) // 2
    *activations, p = _layer_outputs(params, x)
    n = len(y)
    rows = np.arange(n)
    delta = p.copy()
    delta[rows, y] -= 1.0
    delta /= n  # the loss is a mean over the batch
    grads: list[np.ndarray] = [None] * len(params)
    for k in range(depth - 1, -1, -1):
        grads[2 * k] = activations[k].T @ delta
        grads[2 * k + 1] = delta.sum(axis=0)
        if k > 0:  # through W_k and the slope a_k (1 - a_k) of the sigmoid
            delta = (delta @ params[2 * k].T) * activations[k] * (1.0 - activations[k])
    return float(-np.mean(np.log(p[rows, y]))), grads


def autograd_gradients(params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray):
    """Mean loss and gradients of :func:`batch_gradients`, by ``torch.autograd``."""
    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    h = torch.as_tensor(np.atleast_2d(x), dtype=torch.float64)
    depth = len(params) // 2
    for k in range(depth):
        z = h @ tensors[2 * k] + tensors[2 * k + 1]
        h = torch.sigmoid(z) if k < depth - 1 else z
    loss = torch.nn.functional.cross_entropy(h, torch.as_tensor(np.atleast_1d(y)))
    grads = torch.autograd.grad(loss, tensors)
    return float(loss.detach()), [g.numpy() for g in grads]


def finite_difference_check(
    params: Sequence[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    grads: Sequence[np.ndarray],
    *,
    n_entries: int = 5,
    eps: float = 1e-6,
    seed: int = 0,
) -> float:
    """Largest |analytic − central difference| over ``n_entries`` random entries of
    every parameter array, for the mean cross-entropy on ``(x, y)``."""
    n_entries = check_int("n_entries", n_entries, minimum=1)
    eps = check_float("eps", eps, positive=True)
    rng = numpy_generator(seed)
    params = [p.copy() for p in params]
    worst = 0.0
    for p, g in zip(params, grads, strict=True):
        for flat in rng.choice(p.size, size=min(n_entries, p.size), replace=False):
            idx = np.unravel_index(flat, p.shape)
            saved = p[idx]
            p[idx] = saved + eps
            up = mean_cross_entropy(params, x, y)
            p[idx] = saved - eps
            down = mean_cross_entropy(params, x, y)
            p[idx] = saved
            worst = max(worst, abs((up - down) / (2 * eps) - g[idx]))
    return worst


def _sgd_steps(params, x, y, lr, batch_size, seed):
    """The steps of :func:`sgd_run`, without end (updating ``params`` in place);
    yields after each step whether it ended an epoch."""
    lr = check_float("lr", lr, positive=True)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if not 0 < len(y) == len(x):
        raise ValueError(
            f"x and y must hold as many samples, at least one, got {len(x)} and {len(y)}"
        )
    rng = numpy_generator(seed)
    while True:
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            batch = order[start : start + batch_size]
            if batch_size == 1:
                _, grads = sample_gradients(params, x[batch[0]], int(y[batch[0]]))
            else:
                _, grads = batch_gradients(params, x[batch], y[batch])
            for p, g in zip(params, grads, strict=True):
                p -= lr * g
            yield start + batch_size >= len(y)


def sgd_epoch(
    params: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    *,
    lr: float,
    batch_size: int = 1,
    seed: int = 0,
) -> list[np.ndarray]:
    """One epoch of SGD in a seeded random order; updates ``params`` in place.

    ``batch_size=1`` steps with :func:`sample_gradients` one sample at a time,
    larger batches with :func:`batch_gradients` (vectorised).
    """
    for end_of_epoch in _sgd_steps(params, x, y, lr, batch_size, seed):
        if end_of_epoch:
            return params


def sgd_run(
    params: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    lr: float,
    batch_size: int,
    record: Sequence[int],
    seed: int = 0,
) -> dict[int, float]:
    """SGD for ``max(record)`` steps; test accuracy after each step in ``record``.

    Each epoch visits the training set in a new random order, in batches of
    ``batch_size`` (the last batch of an epoch may be smaller); one step is one
    gradient of the mean loss over one batch (:func:`batch_gradients`, or
    :func:`sample_gradients` for ``batch_size=1``) and one update. A step uses
    ``batch_size`` per-sample gradients: ``⌈n / batch_size⌉`` steps make an epoch.
    Updates ``params`` in place.
    """
    record = sorted(set(_check_ints("record", record, "step", minimum=1)))
    steps = _sgd_steps(params, x, y, lr, batch_size, seed)
    accuracies: dict[int, float] = {}
    for step in range(1, record[-1] + 1):
        next(steps)
        if step in record:
            accuracies[step] = accuracy(params, x_test, y_test)
    return accuracies


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def _check_columns(name: str, data, keys: tuple, n: int, entry: str) -> None:
    """``data`` must hold arrays ``keys`` of shape ``(n,)``, one value per ``entry``."""
    shapes = [np.shape(data.get(k)) for k in keys]
    if any(shape != (n,) for shape in shapes):
        raise ValueError(
            f"{name} must hold arrays {keys} of shape ({n},) (one entry per "
            f"{entry}), got shapes {shapes}"
        )


def plot_jacobian_sweep(fig, sizes, sweep_in, sweep_out, fixed: int) -> None:
    """Counted multiply-adds (top) and wall-clock time (bottom) of ``jacfwd`` and
    ``jacrev`` against the input dimension (left, output fixed at ``fixed``) and
    the output dimension (right, input fixed at ``fixed``), with the formulas
    ``(d_0 + 2) P`` and ``(d_L + 1) P`` as lines."""
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    from .plotting import colors

    fixed = check_int("fixed", fixed, minimum=1)
    sizes = np.asarray(sizes)
    _check_columns("sweep_in", sweep_in, _SWEEP_KEYS, len(sizes), "size")
    _check_columns("sweep_out", sweep_out, _SWEEP_KEYS, len(sizes), "size")
    c_fwd, c_rev = colors()[:2]
    axes = fig.subplots(2, 2, sharex=True)
    fixed_dims = np.full_like(sizes, fixed)
    panels = [
        (sweep_in, "input dimension $d_0$", "$d_L$", sizes, fixed_dims),
        (sweep_out, "output dimension $d_L$", "$d_0$", fixed_dims, sizes),
    ]
    for (top, bottom), (sweep, xlabel, fixed_name, d_in, d_out) in zip(
        axes.T, panels, strict=True
    ):
        modes = [
            ("forward", "jacfwd", "o", c_fwd, d_in + 2),
            ("reverse", "jacrev", "s", c_rev, d_out + 1),
        ]
        for mode, _, _, color, n_passes in modes:
            label = f"{mode} formula"
            top.plot(sizes, n_passes * sweep["pass"], color=color, lw=1, label=label)
        for mode, name, marker, color, _ in modes:
            label = f"{name}, counted"
            top.plot(sizes, sweep[f"{mode}_ops"], marker, color=color, label=label)
            times = sweep[f"{mode}_time"] * 1e3
            bottom.plot(sizes, times, marker + "-", color=color, label=name)
        top.set_title(f"{fixed_name} = {fixed}")
        bottom.set_xlabel(xlabel)
        for ax in (top, bottom):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.axvline(fixed, color="0.5", ls=":", lw=1)
        # times span about one decade: label 1-2-5 steps as plain numbers
        bottom.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        bottom.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        bottom.yaxis.set_minor_formatter(NullFormatter())
    axes[0, 0].set_ylabel("multiply-adds")
    axes[1, 0].set_ylabel("wall-clock time (ms)")
    axes[0, 0].legend()
    axes[1, 0].legend()


def plot_memory_sweep(ax, n_layers, memory: dict) -> None:
    """Bytes kept by one reverse pass and one forward pass against the number of
    tanh layers (see :func:`memory_sweep`)."""
    from .plotting import colors

    c_fwd, c_rev = colors()[:2]
    lines = {  # key: format, color, label and further keywords of its line
        "predicted": ("-", c_rev, "one activation per layer", {"lw": 1}),
        "saved": ("s", c_rev, "reverse: held for backward", {}),
        "peak_reverse": ("^-", c_rev, "reverse: peak live", {"alpha": 0.6}),
        "peak_forward": ("o-", c_fwd, "forward: peak live", {}),
    }
    _check_columns("memory", memory, tuple(lines), len(n_layers), "depth")
    for key, (fmt, color, label, style) in lines.items():
        ax.plot(n_layers, memory[key], fmt, color=color, label=label, **style)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("number of tanh layers")
    ax.set_ylabel("bytes")
    ax.legend()
