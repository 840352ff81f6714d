"""Deep linear networks trained on hierarchically structured data.

Eight items sit at the leaves of a binary tree of depth three. Every feature of
the items is drawn by letting a sign diffuse down the tree, flipping on each
branch with a small probability, so items that share a recent ancestor tend to
share features. A linear network with one hidden layer learns to map one-hot
item labels to these features by full-batch gradient descent from a tiny
initialisation. Its end-to-end map ``W_tot = W2 @ W1`` learns the singular modes
of the data one after another, along the sigmoidal curves of Saxe, McClelland
and Ganguli, which this module computes next to the simulations.

Conventions: samples are *columns*. Inputs ``X`` have shape ``(n_in, n_samples)``,
targets ``Y`` shape ``(n_out, n_samples)``, and a network with weights
``W1, ..., WL`` predicts ``WL @ ... @ W1 @ X``. The loss is the mean squared
error over all ``n_out * n_samples`` entries, as ``torch.nn.MSELoss`` computes it.
Training runs in float64 with the gradients written out by hand: for networks
this small, autograd's bookkeeping would cost more than the arithmetic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._checks import check_float, check_int, numpy_generator, torch_generator
from ._runtime import single_thread

#: The items at the leaves of the default tree, in leaf order: two fish, two
#: birds, two flowers, two trees.
ITEMS = ("goldfish", "tuna", "robin", "canary", "rose", "daisy", "pine", "oak")

_DTYPE = torch.float64


# --------------------------------------------------------------------------
# Hierarchical data
# --------------------------------------------------------------------------


def _check_tree(n_levels, n_branches) -> tuple[int, int]:
    n_levels = check_int("n_levels", n_levels, minimum=1)
    n_branches = check_int("n_branches", n_branches, minimum=1)
    return n_levels, n_branches


def tree_parents(n_levels: int = 3, n_branches: int = 2) -> np.ndarray:
    """Parent of every node of a complete tree, nodes numbered breadth first.

    Parameters
    ----------
    n_levels : int, default 3
        Number of branchings between the root and the leaves (>= 1).
    n_branches : int, default 2
        Children of every inner node (>= 1).

    Returns
    -------
    numpy.ndarray of int, shape (n_nodes,)
        ``parents[k]`` is the parent of node ``k``; the root (node 0) has ``-1``.
        The last ``n_branches ** n_levels`` nodes are the leaves (the items).
    """
    n_levels, n_branches = _check_tree(n_levels, n_branches)
    n_nodes = sum(n_branches**level for level in range(n_levels + 1))
    parents = np.full(n_nodes, -1, dtype=int)
    parents[1:] = (np.arange(1, n_nodes) - 1) // n_branches
    return parents


def sample_tree_features(
    n_features: int,
    *,
    n_levels: int = 3,
    n_branches: int = 2,
    flip_probability: float = 0.15,
    seed: int = 0,
) -> np.ndarray:
    """Features of the leaves drawn by a branching diffusion down the tree.

    For each feature independently, the root takes the value +1 or -1 with equal
    probability; every child copies its parent's value, flipped with probability
    ``flip_probability``. The leaves' values are the features of the items.

    Parameters
    ----------
    n_features : int
        Number of features to draw (>= 1).
    n_levels, n_branches : int
        Shape of the tree, as in :func:`tree_parents`.
    flip_probability : float, default 0.15
        Probability that a branch flips the sign, in [0, 1].
    seed : int, default 0
        Seed of the random number generator.

    Returns
    -------
    numpy.ndarray, shape (n_features, n_items)
        Entries +1 or -1; column ``i`` holds the features of item ``i``, with
        ``n_items = n_branches ** n_levels``.
    """
    n_features = check_int("n_features", n_features, minimum=1)
    n_levels, n_branches = _check_tree(n_levels, n_branches)
    p = check_float("flip_probability", flip_probability, minimum=0.0, maximum=1.0)
    rng = numpy_generator(seed)
    parents = tree_parents(n_levels, n_branches)
    flip_prob = np.full(parents.size, p)
    flip_prob[0] = 0.5  # the root's sign is a fair coin
    signs = np.where(rng.random((n_features, parents.size)) < flip_prob, -1.0, 1.0)
    # breadth-first numbering puts every parent before its children
    values = signs.copy()
    for node in range(1, parents.size):
        values[:, node] *= values[:, parents[node]]
    n_items = n_branches**n_levels
    return values[:, -n_items:]


def tree_levels_apart(n_levels: int = 3, n_branches: int = 2) -> np.ndarray:
    """How many levels up two leaves meet: 0 for an item and itself, 1 for
    siblings, ..., ``n_levels`` for items whose only common ancestor is the root.

    Returns
    -------
    numpy.ndarray of int, shape (n_items, n_items)
    """
    n_levels, n_branches = _check_tree(n_levels, n_branches)
    leaves = np.arange(n_branches**n_levels)
    apart = np.zeros((leaves.size, leaves.size), dtype=int)
    # two leaves still differ at every level below the one where they meet
    for level in range(n_levels):
        block = leaves // n_branches**level
        apart += block[:, None] != block[None, :]
    return apart


def tree_correlation(
    n_levels: int = 3, n_branches: int = 2, flip_probability: float = 0.15
) -> np.ndarray:
    """Expected item–item correlation of the features of :func:`sample_tree_features`.

    Two leaves that meet ``k`` levels up are joined by ``2k`` branches, and their
    product is flipped once for every branch that flips, so
    ``E[y_i y_j] = (1 - 2 p) ** (2 k)``.

    Returns
    -------
    numpy.ndarray, shape (n_items, n_items)
    """
    p = check_float("flip_probability", flip_probability, minimum=0.0, maximum=1.0)
    return (1.0 - 2.0 * p) ** (2 * tree_levels_apart(n_levels, n_branches))


def block_means(
    values: Sequence[float], item: int, n_levels: int = 3, n_branches: int = 2
) -> np.ndarray:
    """Mean of one feature over the items that share an ancestor with ``item``.

    Parameters
    ----------
    values : sequence of float, length n_items
        The feature's value for every item.
    item : int
        Index of the item.

    Returns
    -------
    numpy.ndarray, shape (n_levels + 1,)
        Entry ``k`` averages over the descendants of ``item``'s ancestor ``k``
        levels below the root: entry 0 over all items, the last entry is the
        item's own value.
    """
    apart = tree_levels_apart(n_levels, n_branches)
    values = np.asarray(values, dtype=float)
    if values.shape != (len(apart),):
        raise ValueError(f"values must have shape ({len(apart)},), got {values.shape}")
    item = check_int("item", item, minimum=0, maximum=len(apart) - 1)
    # entry k: the items that meet ``item`` at most ``n_levels - k`` levels up
    near = apart[item]
    return np.array([values[near <= n_levels - k].mean() for k in range(n_levels + 1)])


# --------------------------------------------------------------------------
# Networks and training
# --------------------------------------------------------------------------


def init_weights(
    sizes: Sequence[int], gamma: float, *, seed: int = 0
) -> list[torch.Tensor]:
    """Gaussian weights of a linear network without biases.

    Layer ``k`` maps ``sizes[k]`` units to ``sizes[k + 1]`` units; its weights are
    drawn from N(0, gamma² / (sizes[k] + sizes[k + 1])), so ``gamma`` sets the
    scale of the whole initialisation.

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes, input first (at least two, each >= 1).
    gamma : float
        Initialisation scale (>= 0; 0 starts exactly at the saddle point at the origin).
    seed : int, default 0

    Returns
    -------
    list of torch.Tensor
        ``[W1, ..., WL]`` with ``Wk`` of shape ``(sizes[k], sizes[k - 1])``, float64.
    """
    sizes = [check_int("sizes[k]", s, minimum=1) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least two layers, got {sizes!r}")
    gamma = check_float("gamma", gamma, nonnegative=True)
    gen = torch_generator(seed)
    weights = []
    for n_in, n_out in itertools.pairwise(sizes):
        std = gamma / math.sqrt(n_in + n_out)
        weights.append(torch.randn(n_out, n_in, generator=gen, dtype=_DTYPE) * std)
    return weights


def _as_tensor(name: str, array) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(array, dtype=float), dtype=_DTYPE)
    if tensor.dim() != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {tuple(tensor.shape)}")
    return tensor


def _check_data(X, Y) -> tuple[torch.Tensor, torch.Tensor]:
    X, Y = _as_tensor("X", X), _as_tensor("Y", Y)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"X and Y must have the same number of columns (samples), "
            f"got shapes {tuple(X.shape)} and {tuple(Y.shape)}"
        )
    return X, Y


def _check_chain(weights, X, Y) -> list[torch.Tensor]:
    weights = [_as_tensor(f"weights[{k}]", w).clone() for k, w in enumerate(weights)]
    if not weights:
        raise ValueError("weights must hold at least one matrix, got []")
    n_in = X.shape[0]
    for k, w in enumerate(weights):
        if w.shape[1] != n_in:
            raise ValueError(
                f"weights[{k}] must have {n_in} columns to follow the previous layer, "
                f"got shape {tuple(w.shape)}"
            )
        n_in = w.shape[0]
    if n_in != Y.shape[0]:
        raise ValueError(
            f"the last layer must have {Y.shape[0]} rows (n_out), got {n_in}"
        )
    return weights


def _check_watch(watch, Y) -> tuple[int, int] | None:
    if watch is None:
        return None
    out_index = check_int("watch[0]", watch[0], minimum=0, maximum=Y.shape[0] - 1)
    sample_index = check_int("watch[1]", watch[1], minimum=0, maximum=Y.shape[1] - 1)
    return out_index, sample_index


def end_to_end(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """The end-to-end map ``W_tot = WL @ ... @ W1``, shape ``(n_out, n_in)``."""
    if not weights:
        raise ValueError("weights must hold at least one matrix, got []")
    total = weights[0]
    for w in weights[1:]:
        total = w @ total
    return total


@dataclass
class LinearRun:
    """What :func:`train_linear_net` or :func:`train_grid` recorded.

    A grid holds one run per (gamma, lr) pair: its arrays have two leading axes
    ``(n_gammas, n_lrs)`` before the shapes below, and it keeps no weights.

    Attributes
    ----------
    loss : numpy.ndarray, shape (n_epochs + 1,)
        Mean squared error after each number of epochs 0, 1, ..., n_epochs
        (inf once a run of a grid has diverged).
    record_epochs : numpy.ndarray of int, shape (n_records,)
        Epochs at which the quantities below were recorded.
    singular_values : numpy.ndarray, shape (n_records, min(n_out, n_in))
        Singular values of ``W_tot``, largest first (NaN once a run diverged).
    rsm : numpy.ndarray or None, shape (n_records, n_samples, n_samples)
        Representational similarity ``H @ H.T`` of the first hidden layer, with
        ``H = (W1 @ X).T`` one row per sample; None without a hidden layer.
    watched : numpy.ndarray or None, shape (n_epochs + 1,)
        The prediction for one (output, sample) entry after every epoch.
    weights : list of torch.Tensor or None
        The weights after the last epoch (:func:`train_linear_net` only).
    gammas, lrs : numpy.ndarray or None
        The grid's axes (:func:`train_grid` only).
    """

    loss: np.ndarray
    record_epochs: np.ndarray
    singular_values: np.ndarray
    rsm: np.ndarray | None
    watched: np.ndarray | None
    weights: list | None = None
    gammas: np.ndarray | None = None
    lrs: np.ndarray | None = None

    @property
    def w_tot(self) -> np.ndarray:
        """The trained end-to-end map, shape ``(n_out, n_in)``."""
        return end_to_end(self.weights).numpy()


@single_thread()
def train_linear_net(
    X,
    Y,
    weights: Sequence,
    *,
    lr: float,
    n_epochs: int,
    record_epochs: Sequence[int] | None = None,
    watch: tuple[int, int] | None = None,
) -> LinearRun:
    """Full-batch gradient descent on a linear network without biases.

    Parameters
    ----------
    X : array, shape (n_in, n_samples)
    Y : array, shape (n_out, n_samples)
    weights : sequence of arrays
        Initial weights ``[W1, ..., WL]`` (copied, not modified); one matrix is a
        network without hidden layer.
    lr : float
        Learning rate (> 0) on the mean squared error over all entries.
    n_epochs : int
        Number of gradient steps (>= 1).
    record_epochs : sequence of int, optional
        Epochs (0 to n_epochs) at which to record the singular values of
        ``W_tot`` and the hidden layer's similarity matrix; every epoch when omitted.
    watch : (int, int), optional
        ``(output, sample)``: record that entry of the prediction after every epoch.

    Returns
    -------
    LinearRun
    """
    X, Y = _check_data(X, Y)
    weights = _check_chain(weights, X, Y)
    step = effective_step(lr, *Y.shape)
    n_epochs = check_int("n_epochs", n_epochs, minimum=1)
    if record_epochs is None:
        record_epochs = range(n_epochs + 1)
    record_epochs = np.unique(
        [
            check_int("record_epochs[k]", e, minimum=0, maximum=n_epochs)
            for e in record_epochs
        ]
    )
    watch = _check_watch(watch, Y)
    loss = torch.empty(n_epochs + 1, dtype=_DTYPE)
    watched = torch.empty(n_epochs + 1, dtype=_DTYPE)
    singular_values, rsms = [], []
    to_record = set(record_epochs.tolist())
    for epoch in range(n_epochs + 1):
        activities = [X]
        for w in weights:
            activities.append(w @ activities[-1])
        error = Y - activities[-1]
        loss[epoch] = error.square().mean()
        if watch is not None:
            watched[epoch] = activities[-1][watch]
        if epoch in to_record:
            singular_values.append(torch.linalg.svdvals(end_to_end(weights)))
            if len(weights) > 1:
                hidden = activities[1].T
                rsms.append(hidden @ hidden.T)
        if epoch == n_epochs:
            break
        # backpropagate the error through the chain, then step every layer at once
        delta = error
        grads = []
        for k in range(len(weights) - 1, -1, -1):
            grads.append(delta @ activities[k].T)
            delta = weights[k].T @ delta
        for w, g in zip(weights, reversed(grads), strict=True):
            w += step * g
    return LinearRun(
        loss=loss.numpy(),
        record_epochs=record_epochs,
        singular_values=torch.stack(singular_values).numpy(),
        rsm=torch.stack(rsms).numpy() if rsms else None,
        watched=watched.numpy() if watch is not None else None,
        weights=weights,
    )


@single_thread()
def train_grid(
    X,
    Y,
    gammas: Sequence[float],
    lrs: Sequence[float],
    *,
    n_hidden: int,
    n_epochs: int,
    record_every: int = 1,
    watch: tuple[int, int] | None = None,
    seed: int = 0,
) -> LinearRun:
    """Train one-hidden-layer linear networks for every (gamma, lr) pair at once.

    Every run starts from the same random draw scaled by its own ``gamma``, so
    the runs differ only in scale and learning rate. The runs are exact
    full-batch gradient descent (the same steps :func:`train_linear_net` takes),
    computed in the span of the targets: writing ``Y = Q R`` with orthonormal
    ``Q`` and ``W2 = Q A + B`` with ``Q.T @ B = 0``, the update of ``W2`` keeps
    ``B`` orthogonal to ``Q``, and ``B`` enters the dynamics only through the
    small Gram matrix ``B.T @ B``. A step then costs the same for 10,000 outputs
    as for eight, and a whole grid runs as one batched computation.

    Parameters
    ----------
    X, Y, watch
        As in :func:`train_linear_net`.
    gammas : sequence of float
        Initialisation scales (each >= 0), as in :func:`init_weights`.
    lrs : sequence of float
        Learning rates (each > 0).
    n_hidden : int
        Hidden units (>= 1).
    n_epochs : int
        Gradient steps per run (>= 1).
    record_every : int, default 1
        Record singular values and similarity matrices every this many epochs
        (and at the last).
    seed : int, default 0

    Returns
    -------
    LinearRun
        With the grid's two leading axes.
    """
    X, Y = _check_data(X, Y)
    gammas = np.array([check_float("gammas[k]", g, nonnegative=True) for g in gammas])
    lrs = np.array([check_float("lrs[k]", lr, positive=True) for lr in lrs])
    if gammas.size == 0 or lrs.size == 0:
        raise ValueError("gammas and lrs must each hold at least one value")
    n_hidden = check_int("n_hidden", n_hidden, minimum=1)
    n_epochs = check_int("n_epochs", n_epochs, minimum=1)
    record_every = check_int("record_every", record_every, minimum=1)
    n_in, n_out = X.shape[0], Y.shape[0]
    watch = _check_watch(watch, Y)
    out_index, sample_index = watch or (0, 0)
    w1_unit, w2_unit = init_weights([n_in, n_hidden, n_out], 1.0, seed=seed)
    q, r = torch.linalg.qr(Y)
    a_unit = q.T @ w2_unit
    b_unit = w2_unit - q @ a_unit
    gram_unit = b_unit.T @ b_unit
    # the watched output's rows of Q and B: B's row evolves like B itself
    q_row = q[out_index]
    n_runs = gammas.size * lrs.size
    scale = torch.tensor(np.repeat(gammas, lrs.size), dtype=_DTYPE)[:, None, None]
    step = torch.tensor(np.tile(2.0 * lrs / Y.numel(), gammas.size), dtype=_DTYPE)[
        :, None, None
    ]
    w1 = scale * w1_unit.expand(n_runs, -1, -1)
    a = scale * a_unit.expand(n_runs, -1, -1)
    gram = scale**2 * gram_unit.expand(n_runs, -1, -1)
    b_row = scale[:, :, 0] * b_unit[out_index]
    eye = torch.eye(n_hidden, dtype=_DTYPE)
    xxt = X @ X.T
    record_epochs = sorted(set(range(0, n_epochs + 1, record_every)) | {n_epochs})
    loss = torch.empty(n_runs, n_epochs + 1, dtype=_DTYPE)
    watched = torch.empty(n_runs, n_epochs + 1, dtype=_DTYPE)
    gram_tot, rsms = [], []
    for epoch in range(n_epochs + 1):
        hidden = w1 @ X
        residual = r - a @ hidden
        orthogonal_part = gram @ hidden
        loss[:, epoch] = (
            residual.square().sum((1, 2)) + (hidden * orthogonal_part).sum((1, 2))
        ) / Y.numel()
        w2_row = q_row @ a + b_row
        watched[:, epoch] = (w2_row * hidden[:, :, sample_index]).sum(-1)
        if epoch in record_epochs:
            # W_tot.T W_tot = W1.T (A.T A + B.T B) W1, since Q.T B = 0
            gram_tot.append(w1.mT @ (a.mT @ a + gram) @ w1)
            rsms.append(hidden.mT @ hidden)
        if epoch == n_epochs:
            break
        grad_w1 = (a.mT @ residual - orthogonal_part) @ X.T
        grad_a = residual @ hidden.mT
        shrink = eye - step * (w1 @ xxt @ w1.mT)
        w1 = w1 + step * grad_w1
        a = a + step * grad_a
        gram = shrink @ gram @ shrink
        b_row = (b_row[:, None, :] @ shrink)[:, 0, :]
    gram_tot = torch.stack(gram_tot, dim=1)
    finite = gram_tot.isfinite().all(-1).all(-1)
    # a diverged run has no singular values to report; eigvalsh would fail on it
    eig = torch.full(gram_tot.shape[:-1], math.nan, dtype=_DTYPE)
    eig[finite] = torch.linalg.eigvalsh(gram_tot[finite])
    singular_values = eig.clamp(min=0).sqrt().flip(-1)[..., : min(n_in, n_out)]
    shape = (gammas.size, lrs.size)
    # a converged run's loss can come out a rounding error below zero
    loss = torch.nan_to_num(loss, nan=math.inf).clamp(min=0.0)
    return LinearRun(
        loss=loss.unflatten(0, shape).numpy(),
        record_epochs=np.array(record_epochs),
        singular_values=singular_values.unflatten(0, shape).numpy(),
        rsm=torch.stack(rsms, dim=1).unflatten(0, shape).numpy(),
        watched=watched.unflatten(0, shape).numpy() if watch is not None else None,
        gammas=gammas,
        lrs=lrs,
    )


# --------------------------------------------------------------------------
# The exact solution
# --------------------------------------------------------------------------


def effective_step(lr: float, n_out: int, n_samples: int) -> float:
    """The step ``2 lr / (n_out n_samples)`` that gradient descent on the mean
    squared error takes on the summed squared error."""
    lr = check_float("lr", lr, positive=True)
    n_out = check_int("n_out", n_out, minimum=1)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    return 2.0 * lr / (n_out * n_samples)


def _mode_rates(singular_value, initial_strength, step: float, discrete: bool):
    s = np.asarray(singular_value, dtype=float)
    a0 = np.asarray(initial_strength, dtype=float)
    if s.ndim > 1 or s.shape != a0.shape or np.any(s <= 0) or np.any(a0 <= 0):
        raise ValueError(
            "singular_value and initial_strength must be > 0, both floats or both "
            f"1-D of the same length, got {s!r} and {a0!r}"
        )
    step = check_float("step", step, positive=True)
    return s, a0, 2.0 * np.log1p(s * step) if discrete else 2.0 * s * step


def mode_strength(
    epochs,
    singular_value,
    initial_strength,
    step: float,
    *,
    discrete: bool = False,
) -> np.ndarray:
    """Saxe et al.'s sigmoidal trajectory of a mode's strength.

    ``a(t) = s / (1 + (s / a0 - 1) exp(-2 s step t))``: the gradient-flow solution
    for one-hot inputs. With ``discrete=True`` the growth factor per epoch is
    that of gradient descent in the early, linear phase, ``(1 + s step)²``,
    instead of ``exp(2 s step)``.

    Parameters
    ----------
    epochs : array of float
        Times in epochs (>= 0).
    singular_value : float or array, shape (n_modes,)
        The mode's singular value ``s`` in the targets (> 0), or several modes'.
    initial_strength : float or array, shape (n_modes,)
        Its strength ``a0`` at epoch 0 (> 0), see :func:`initial_mode_strengths`.
    step : float
        The effective step (> 0), see :func:`effective_step`.
    discrete : bool, default False

    Returns
    -------
    numpy.ndarray, shape ``epochs.shape``, or ``epochs.shape + (n_modes,)``
    """
    s, a0, rate = _mode_rates(singular_value, initial_strength, step, discrete)
    epochs = np.asarray(epochs, dtype=float)
    return s / (1.0 + (s / a0 - 1.0) * np.exp(-np.multiply.outer(epochs, rate)))


def half_time(singular_value, initial_strength, step: float, *, discrete=False):
    """Epoch at which :func:`mode_strength` reaches half of ``singular_value``:
    ``log(s / a0 - 1) / (2 s step)`` (or with the discrete rate), one per mode."""
    s, a0, rate = _mode_rates(singular_value, initial_strength, step, discrete)
    return np.log(s / a0 - 1.0) / rate


def initial_mode_strengths(Y, w1, w2) -> np.ndarray:
    """Effective initial strength of each mode of ``Y`` for one-hot inputs.

    From a small random start, the part of ``W1 v`` and ``W2.T u`` that grows is
    their mean ``g = (W1 v + W2.T u) / 2``, a vector in the hidden layer. A mode
    learned earlier claims its hidden direction, and later modes lose their
    component along it; so the modes, taken in order of decreasing singular
    value, start from the lengths² of their ``g`` after Gram–Schmidt
    orthogonalisation.

    Parameters
    ----------
    Y : array, shape (n_out, n_samples)
    w1 : array, shape (n_hidden, n_samples)
    w2 : array, shape (n_out, n_hidden), with ``n_hidden >= n_samples``

    Returns
    -------
    numpy.ndarray, shape (n_samples,)
        One strength per singular value of ``Y``, largest singular value first.
    """
    Y = _as_tensor("Y", Y)
    w1, w2 = _check_chain([w1, w2], torch.eye(Y.shape[1], dtype=_DTYPE), Y)
    if w1.shape[0] < Y.shape[1] or Y.shape[0] < Y.shape[1]:
        raise ValueError(
            f"n_hidden and n_out must be >= n_samples = {Y.shape[1]} for every mode "
            f"to be learnable, got W1 of shape {tuple(w1.shape)} and Y of shape "
            f"{tuple(Y.shape)}"
        )
    u, _, vt = torch.linalg.svd(Y, full_matrices=False)
    grows = (w1 @ vt.T + w2.T @ u) / 2
    # the diagonal of R in grows = Q R is the length left after Gram–Schmidt
    _, r = torch.linalg.qr(grows)
    return torch.diagonal(r).square().numpy()


def learning_epochs(epochs, curves, targets, fraction: float = 0.5) -> np.ndarray:
    """First epoch at which each curve reaches ``fraction`` of its target (by
    default half), by linear interpolation.

    Parameters
    ----------
    epochs : array, shape (n_times,)
        Increasing times.
    curves : array, shape (n_times, n_curves)
    targets : array, shape (n_curves,)
    fraction : float, default 0.5
        In (0, 1].

    Returns
    -------
    numpy.ndarray, shape (n_curves,)
        NaN for a curve that never reaches ``fraction`` of its target.
    """
    fraction = check_float("fraction", fraction, positive=True, maximum=1.0)
    epochs = np.asarray(epochs, dtype=float)
    curves = np.asarray(curves, dtype=float)
    targets = np.asarray(targets, dtype=float)
    if (
        curves.ndim != 2
        or curves.shape[0] != epochs.size
        or curves.shape[1] != targets.size
    ):
        raise ValueError(
            f"curves must have shape ({epochs.size}, {targets.size}), "
            f"got {curves.shape}"
        )
    out = np.full(targets.size, np.nan)
    for k, (curve, level) in enumerate(zip(curves.T, fraction * targets, strict=True)):
        above = np.nonzero(curve >= level)[0]
        if above.size == 0:
            continue
        j = above[0]
        if j == 0:
            out[k] = epochs[0]
            continue
        frac = (level - curve[j - 1]) / (curve[j] - curve[j - 1])
        out[k] = epochs[j - 1] + frac * (epochs[j] - epochs[j - 1])
    return out


def least_squares(X, Y) -> np.ndarray:
    """The least-squares map ``W = Y Xᵀ (X Xᵀ)⁻¹``.

    Parameters
    ----------
    X : array, shape (n_in, n_samples), with ``X @ X.T`` invertible
    Y : array, shape (n_out, n_samples)

    Returns
    -------
    numpy.ndarray, shape (n_out, n_in)
    """
    X, Y = _check_data(X, Y)
    gram = X @ X.T
    if torch.linalg.matrix_rank(gram) < gram.shape[0]:
        raise ValueError(
            f"X @ X.T must be invertible (X of full row rank), got rank "
            f"{int(torch.linalg.matrix_rank(gram))} < {gram.shape[0]}"
        )
    return torch.linalg.solve(gram, X @ Y.T).T.numpy()


def similarity_by_relation(rsm, n_levels: int = 3, n_branches: int = 2) -> np.ndarray:
    """Mean similarity of item pairs by how many levels up they meet, relative to
    the mean self-similarity.

    Parameters
    ----------
    rsm : array, shape (n_items, n_items)

    Returns
    -------
    numpy.ndarray, shape (n_levels + 1,)
        Entry ``k`` averages ``rsm`` over pairs that meet ``k`` levels up (entry 0
        is 1 by construction), divided by the mean of the diagonal.
    """
    apart = tree_levels_apart(n_levels, n_branches)
    rsm = np.asarray(rsm, dtype=float)
    if rsm.shape != apart.shape:
        raise ValueError(f"rsm must have shape {apart.shape}, got {rsm.shape}")
    means = np.array([rsm[apart == k].mean() for k in range(n_levels + 1)])
    return means / means[0]


# --------------------------------------------------------------------------
# Deeper networks: balanced starts
# --------------------------------------------------------------------------


def balanced_weights(
    Y, n_hidden: int, n_layers: int, initial_strength: float, *, seed: int = 0
) -> list[torch.Tensor]:
    """A balanced, mode-aligned start of a linear network with ``n_layers`` layers.

    With the SVD ``Y = U S V^T`` (thin, ``P = n_samples`` modes) and random
    ``n_hidden x P`` matrices ``R_k`` with orthonormal columns, layer 1 is
    ``b R_1 V^T``, layer ``k`` (1 < k < n_layers) is ``b R_k R_(k-1)^T`` and the
    last is ``b U R_(n_layers-1)^T``, with ``b = initial_strength ** (1/n_layers)``.
    Every layer carries every mode with the same strength ``b`` (the start is
    balanced), and ``W_tot = initial_strength U V^T``: each mode starts at
    ``initial_strength``. One layer (``n_layers = 1``) is ``initial_strength U V^T``.

    Parameters
    ----------
    Y : array, shape (n_out, n_samples), for one-hot inputs ``X = I``
    n_hidden : int
        Units of every hidden layer (>= n_samples).
    n_layers : int
        Number of weight matrices (>= 1).
    initial_strength : float
        ``a0 > 0``.
    seed : int, default 0
        Seeds the hidden directions ``R_k``.

    Returns
    -------
    list of torch.Tensor, float64
    """
    Y = _as_tensor("Y", Y)
    n_samples = Y.shape[1]
    n_layers = check_int("n_layers", n_layers, minimum=1)
    n_hidden = check_int("n_hidden", n_hidden, minimum=n_samples)
    a0 = check_float("initial_strength", initial_strength, positive=True)
    gen = torch_generator(seed)
    u, _, vt = torch.linalg.svd(Y, full_matrices=False)
    b = a0 ** (1.0 / n_layers)
    dirs = [vt.T]  # the item directions, then one frame per hidden layer
    for _ in range(n_layers - 1):
        z = torch.randn(n_hidden, n_samples, generator=gen, dtype=_DTYPE)
        dirs.append(torch.linalg.qr(z)[0])
    dirs.append(u)
    return [b * dirs[k + 1] @ dirs[k].T for k in range(n_layers)]


def balanced_mode_strengths(
    singular_values,
    initial_strength: float,
    *,
    step: float,
    n_layers: int,
    epochs,
    discrete: bool = False,
) -> np.ndarray:
    """Strength of every mode from a balanced, aligned start of ``n_layers`` layers.

    Each mode's per-layer strength obeys ``db/dt = step b**(N-1) (s - b**N)``, so
    its end-to-end strength ``a = b**N`` obeys

        da/dt = step N a**(2 - 2/N) (s - a),           N = n_layers,

    the logistic equation of the one-hidden-layer case for ``N = 2``. With
    ``discrete=False`` the flow is integrated (``scipy.integrate.solve_ivp``,
    relative tolerance 1e-10); with ``discrete=True`` the result is gradient
    descent itself, ``b <- b + step b**(N-1) (s - b**N)`` once per epoch, which
    :func:`train_linear_net` follows exactly from :func:`balanced_weights`.

    Parameters
    ----------
    singular_values : array, shape (n_modes,)
        ``s`` of each mode (each > 0).
    initial_strength : float
        ``a0 > 0``, the same for every mode.
    step : float
        The effective step, see :func:`effective_step`.
    n_layers : int
        ``N >= 1``.
    epochs : array of int or float, shape (n_times,), increasing, >= 0
        Integers when ``discrete``.

    Returns
    -------
    numpy.ndarray, shape (n_times, n_modes)
    """
    from scipy.integrate import solve_ivp

    s = np.asarray(singular_values, dtype=float)
    if s.ndim != 1 or s.size == 0 or np.any(s <= 0):
        raise ValueError(f"singular_values must be 1-D and > 0, got {s!r}")
    a0 = check_float("initial_strength", initial_strength, positive=True)
    step = check_float("step", step, positive=True)
    n = check_int("n_layers", n_layers, minimum=1)
    epochs = np.asarray(epochs, dtype=float)
    if epochs.ndim != 1 or np.any(np.diff(epochs) < 0) or np.any(epochs < 0):
        raise ValueError("epochs must be 1-D, increasing and >= 0")
    if discrete:
        if np.any(epochs != np.round(epochs)):
            raise ValueError("epochs must be whole numbers when discrete=True")
        b = np.full(s.size, a0 ** (1.0 / n))
        out, done = [], 0
        for epoch in epochs.astype(int):
            for _ in range(epoch - done):
                b = b + step * b ** (n - 1) * (s - b**n)
            done = epoch
            out.append(b**n)
        return np.array(out)

    def rate(_, a):
        return step * n * np.abs(a) ** (2.0 - 2.0 / n) * (s - a)

    solution = solve_ivp(
        rate,
        (0.0, float(epochs[-1]) if epochs.size else 0.0),
        np.full(s.size, a0),
        t_eval=epochs,
        method="LSODA",
        rtol=1e-10,
        atol=1e-12 * s.max(),
    )
    return solution.y.T


def stable_step(singular_value: float, n_layers: int) -> float:
    """The largest effective step at which gradient descent on a learned mode of
    an ``n_layers`` balanced chain is stable, ``2 / (N s**(2 - 2/N))``: the flow
    near ``a = s`` relaxes at the rate ``step N s**(2 - 2/N)``, and a step of
    gradient descent overshoots once that rate times one epoch exceeds 2."""
    s = check_float("singular_value", singular_value, positive=True)
    n = check_int("n_layers", n_layers, minimum=1)
    return 2.0 / (n * s ** (2.0 - 2.0 / n))


# --------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------


def mode_level(k: int, n_branches: int = 2) -> int:
    """Tree level that the ``k``-th mode (0-based, by singular value) distinguishes
    in a complete tree: 0 for the first (shared by all items), then one mode for
    each split at level 1, ``n_branches - 1`` per node at level 2, and so on."""
    k = check_int("k", k, minimum=0)
    n_branches = check_int("n_branches", n_branches, minimum=2)
    level, count = 0, 1
    while k >= count:
        level, count = level + 1, count * n_branches
    return level


def _item_ticks(ax, names, *, rows=True, cols=True):
    ticks = np.arange(len(names))
    if rows:
        ax.set_yticks(ticks, names)
    if cols:
        ax.set_xticks(ticks, names, rotation=90)
    ax.grid(False)


def plot_data(
    fig,
    features,
    names=ITEMS,
    *,
    n_shown: int = 40,
    panels=("inputs", "features", "correlation"),
):
    """Labels, the first ``n_shown`` features and the item–item correlation.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    features : array, shape (n_features, n_items)
    names : sequence of str, length n_items
    n_shown : int, default 40
    panels : sequence of {'inputs', 'features', 'correlation'}
        The panels to draw, side by side in this order (a narrow screen shows
        one or two at a time legibly).
    """
    features = np.asarray(features, dtype=float)
    if features.ndim != 2 or features.shape[1] != len(names):
        raise ValueError(
            f"features must have shape (n_features, {len(names)}), got {features.shape}"
        )
    n_shown = check_int("n_shown", n_shown, minimum=1)
    panels = list(panels)
    ratios = {"inputs": 1, "features": 2.2, "correlation": 1.2}
    if not panels or any(p not in ratios for p in panels):
        raise ValueError(
            f"panels must be a non-empty subset of {tuple(ratios)}, got {panels}"
        )
    axes = fig.subplots(1, len(panels), width_ratios=[ratios[p] for p in panels])
    axes = np.atleast_1d(axes)
    for ax, panel in zip(axes, panels, strict=True):
        if panel == "inputs":
            ax.imshow(np.eye(len(names)), cmap="Greys")
            ax.set_title("input: one-hot labels")
            _item_ticks(ax, names)
        elif panel == "features":
            ax.imshow(
                features[:n_shown].T, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto"
            )
            ax.set_title(f"output: first {n_shown} features")
            ax.set_xlabel("feature")
            _item_ticks(ax, names, cols=False)
            ax.set_xticks([0, n_shown - 1], [1, n_shown])
            if panels[0] != "features":
                ax.set_yticks([])
        else:
            correlation = features.T @ features / features.shape[0]
            image = ax.imshow(correlation, cmap="RdBu_r", vmin=-1, vmax=1)
            ax.set_title("item–item correlation")
            _item_ticks(ax, names)
            fig.colorbar(image, ax=ax, shrink=0.8)


def plot_learning(
    fig,
    epochs,
    loss,
    record_epochs,
    singular_values,
    *,
    predicted=None,
    title=None,
    ylim=None,
    sv_ylim=None,
):
    """Loss (top) and singular values of ``W_tot`` (bottom) against epochs.

    ``predicted`` (shape like ``singular_values``), when given, is drawn dashed.
    ``ylim`` and ``sv_ylim`` fix the two vertical ranges (so that the frames of
    a slider can be compared). A run whose loss is not finite is marked as diverged.
    """
    from . import plotting

    loss = np.asarray(loss, dtype=float)
    sv = np.asarray(singular_values, dtype=float)
    if loss.shape != np.shape(epochs):
        raise ValueError(
            f"loss must have the shape of epochs {np.shape(epochs)}, got {loss.shape}"
        )
    if sv.ndim != 2 or sv.shape[0] != len(record_epochs):
        raise ValueError(
            f"singular_values must have shape ({len(record_epochs)}, n_modes), "
            f"got {sv.shape}"
        )
    ax_loss, ax_sv = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1.4])
    finite = np.isfinite(loss) & (loss < 1e6)
    ax_loss.plot(np.asarray(epochs)[finite], loss[finite], color="k", lw=1.5)
    ax_loss.set_ylabel("training MSE")
    if title:
        ax_loss.set_title(title)
    if not finite.all():
        ax_loss.text(
            0.5, 0.5, "diverged", transform=ax_loss.transAxes, ha="center", color="C1"
        )
    cols = plotting.colors()
    ok = np.all(np.isfinite(sv) & (sv < 1e6), axis=1)
    for k in range(sv.shape[1]):
        color = cols[mode_level(k) % len(cols)]
        ax_sv.plot(np.asarray(record_epochs)[ok], sv[ok, k], color=color, lw=1.5)
        if predicted is not None:
            ax_sv.plot(
                record_epochs, np.asarray(predicted)[:, k], color="k", lw=1, ls="--"
            )
    ax_sv.set_ylabel("singular values of $W_{tot}$")
    ax_sv.set_xlabel("epoch")
    if ylim is not None:
        ax_loss.set_ylim(*ylim)
    if sv_ylim is not None:
        ax_sv.set_ylim(*sv_ylim)
    return ax_loss, ax_sv


def plot_rsm(ax, rsm, names=ITEMS, *, title=None):
    """One similarity matrix, scaled by its largest absolute entry."""
    rsm = np.asarray(rsm, dtype=float)
    if rsm.shape != (len(names), len(names)):
        raise ValueError(
            f"rsm must have shape ({len(names)}, {len(names)}), got {rsm.shape}"
        )
    image = ax.imshow(rsm / np.abs(rsm).max(), cmap="RdBu_r", vmin=-1, vmax=1)
    _item_ticks(ax, names)
    if title:
        ax.set_title(title)
    return image
