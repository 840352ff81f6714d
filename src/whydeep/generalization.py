"""Generalization: double descent, memorisation, implicit bias, lazy training
and sharpness.

Every experiment of the chapter is small on purpose: closed forms are evaluated
in NumPy, simulations draw many small problems at once, and the networks are
trained full batch. Each closed form here has a test in
``tests/test_generalization.py`` that checks it against its own simulation.

Sections follow the chapter:

1. double descent of minimum-norm least squares (asymptotic and finite-n closed
   forms, ridge, random ReLU features on digits);
2. memorisation of random labels by a batch of classifiers;
3. implicit bias of gradient descent (least squares, deep matrix factorisation);
4. the neural tangent kernel of a two-layer ReLU network, lazy training;
5. sharpness: the top Hessian eigenvalue under gradient descent.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ._checks import check_choice, check_float, check_int, numpy_generator
from .autodiff import flat_loss, top_hessian_eigenvalue
from .nets import BatchedMLP, mlp

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _array(name: str, values, ndim: int | None = None, *, positive=False):
    """``values`` as a non-empty finite float array, of ``ndim`` dimensions or
    with positive entries when asked, or ``ValueError`` naming ``name``."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or (positive and np.any(arr <= 0)):
        what = "finite positive numbers" if positive else "finite numbers"
        raise ValueError(f"{name} must be {what} (at least one), got {values!r}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array, got shape {arr.shape}")
    return arr


def _int_list(name: str, values, minimum: int = 1) -> list[int]:
    try:
        items = list(values)
    except TypeError:
        items = []
    if not items:
        raise ValueError(
            f"{name} must be a non-empty sequence of integers, got {values!r}"
        )
    return [check_int(f"{name}[i]", v, minimum=minimum) for v in items]


def _stack(rows: list[dict], shape: tuple) -> dict:
    """Per-run results (dicts of numbers or arrays, in C order over a grid of
    ``shape``) as one array per key, of shape ``shape`` + the value's shape."""
    return {
        k: np.array([r[k] for r in rows]).reshape(*shape, *np.shape(rows[0][k]))
        for k in rows[0]
    }


def _relative_change(new: np.ndarray, old: np.ndarray) -> float:
    """``||new - old|| / ||old||`` (Frobenius for matrices)."""
    return float(np.linalg.norm(new - old) / np.linalg.norm(old))


class _Adam:
    """Adam with PyTorch's default constants, in a few lines.

    ``torch.optim`` imports the compiler stack on first use, which costs
    seconds: more than the whole training run of this chapter's networks.
    """

    def __init__(self, params, lr: float):
        self.params, self.lr, self.t = params, lr, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def step(self, loss: torch.Tensor) -> None:
        grads = torch.autograd.grad(loss, self.params)
        self.t += 1
        b1, b2 = 0.9, 0.999
        with torch.no_grad():
            for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v / (1 - b2**self.t)).sqrt_().add_(1e-8)
                p.addcdiv_(m, denom, value=-self.lr / (1 - b1**self.t))


# ---------------------------------------------------------------------------
# 1. Double descent
# ---------------------------------------------------------------------------


def ridgeless_risk(gamma, signal: float = 1.0, noise: float = 1.0) -> np.ndarray:
    """Asymptotic excess risk of minimum-norm least squares, isotropic features.

    Hastie, Montanari, Rosset and Tibshirani (2019): with ``p/n -> gamma``,
    ``noise * gamma / (1 - gamma)`` for ``gamma < 1`` and
    ``signal * (1 - 1/gamma) + noise / (gamma - 1)`` for ``gamma > 1``
    (``inf`` at ``gamma = 1``). ``signal`` is ``||beta||^2``, ``noise`` the
    noise variance.
    """
    gamma = _array("gamma", gamma, positive=True)
    signal = check_float("signal", signal, nonnegative=True)
    noise = check_float("noise", noise, nonnegative=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        under = noise * gamma / (1 - gamma)
        over = signal * (1 - 1 / gamma) + noise / (gamma - 1)
    return np.where(gamma < 1, under, np.where(gamma > 1, over, np.inf))


def mp_stieltjes(z, gamma) -> np.ndarray:
    """Stieltjes transform ``m(z) = E[1/(s - z)]`` of the Marchenko–Pastur law
    with ratio ``gamma``, for real ``z < 0``."""
    z = np.asarray(z, dtype=float)
    gamma = _array("gamma", gamma, positive=True)
    if np.any(z >= 0):
        raise ValueError(f"z must be negative, got {z!r}")
    lam = -z
    b = 1 - gamma + lam
    return (np.sqrt(b**2 + 4 * gamma * lam) - b) / (2 * gamma * lam)


def optimal_ridge_risk(gamma, signal: float = 1.0, noise: float = 1.0) -> np.ndarray:
    """Asymptotic excess risk of ridge regression at its best penalty.

    The best penalty is ``lambda* = noise * gamma / signal`` and the risk there
    is ``noise * gamma * m(-lambda*)``, with ``m`` the Marchenko–Pastur
    Stieltjes transform (Dobriban and Wager 2018; Hastie et al. 2019).
    """
    gamma = _array("gamma", gamma, positive=True)
    signal = check_float("signal", signal, positive=True)
    noise = check_float("noise", noise, positive=True)
    lam = noise * gamma / signal
    return noise * gamma * mp_stieltjes(-lam, gamma)


def subset_risk(n: int, p, beta, noise: float = 1.0) -> np.ndarray:
    """Expected test risk of minimum-norm least squares on the first ``p`` of
    ``D = len(beta)`` isotropic Gaussian features, ``n`` samples.

    Belkin, Hsu and Xu (2019), Theorem 1: with ``b_in = ||beta_T||^2`` and
    ``b_out = ||beta_{T^c}||^2 + noise``, the risk ``E[(y - x.beta_hat)^2]``
    is ``b_out * (1 + p/(n - p - 1))`` for ``p <= n - 2``,
    ``b_in * (1 - n/p) + b_out * (1 + n/(p - n - 1))`` for ``p >= n + 2``,
    and infinite in between. The risk includes the noise.
    """
    n = check_int("n", n, minimum=2)
    beta = _array("beta", beta, 1)
    noise = check_float("noise", noise, nonnegative=True)
    p = np.atleast_1d(np.asarray(p))
    if p.dtype.kind not in "iu" or np.any(p < 1) or np.any(p > beta.size):
        raise ValueError(f"p must be integers in [1, {beta.size}], got {p!r}")
    tail = np.concatenate([np.cumsum((beta**2)[::-1])[::-1], [0.0]])
    b_out = tail[p] + noise
    b_in = tail[0] - tail[p]
    risk = np.full(p.shape, np.inf)
    lo = p <= n - 2
    hi = p >= n + 2
    risk[lo] = b_out[lo] * (1 + p[lo] / (n - p[lo] - 1))
    risk[hi] = b_in[hi] * (1 - n / p[hi]) + b_out[hi] * (1 + n / (p[hi] - n - 1))
    return risk


def finite_ridgeless_risk(n: int, p, signal: float = 1.0, noise: float = 1.0):
    """Exact expected excess risk of minimum-norm least squares with ``n``
    samples and ``p`` isotropic Gaussian features, all of them used.

    The case ``D = p`` of :func:`subset_risk` minus the noise:
    ``noise * p / (n - p - 1)`` for ``p <= n - 2`` and
    ``signal * (1 - n/p) + noise * n / (p - n - 1)`` for ``p >= n + 2``. As
    ``n, p -> inf`` with ``p/n -> gamma`` it tends to :func:`ridgeless_risk`.
    """
    n = check_int("n", n, minimum=2)
    p = np.atleast_1d(np.asarray(p))
    if p.dtype.kind not in "iu" or np.any(p < 1):
        raise ValueError(f"p must be positive integers, got {p!r}")
    signal = check_float("signal", signal, nonnegative=True)
    noise = check_float("noise", noise, nonnegative=True)
    risk = [subset_risk(n, q, np.full(q, np.sqrt(signal / q)), noise)[0] for q in p]
    return np.array(risk) - noise


def simulate_isotropic_risk(
    n: int,
    ps,
    signal: float = 1.0,
    noise: float = 1.0,
    *,
    n_draws: int = 20,
    ridge=0.0,
    seed: int = 0,
) -> np.ndarray:
    """Excess risk ``||b - beta||^2`` of least squares on ``p`` isotropic features,
    all used, ``||beta||^2 = signal``; shape ``(n_draws, len(ps))``.

    ``ridge`` as in :func:`simulate_subset_risk`. The design is rotation
    invariant, so one ``beta`` of each norm stands for all.
    """
    ps = _int_list("ps", ps)
    seed = check_int("seed", seed, minimum=0)
    signal = check_float("signal", signal, positive=True)
    noise = check_float("noise", noise, nonnegative=True)
    risk = []
    for j, p in enumerate(ps):
        beta = np.full(p, np.sqrt(signal / p))
        kwargs = {"n_draws": n_draws, "ridge": ridge, "seed": seed + j}
        risk.append(simulate_subset_risk(n, [p], beta, noise, **kwargs)[:, 0])
    return np.stack(risk, axis=1) - noise


def simulate_subset_risk(
    n: int,
    ps,
    beta,
    noise: float = 1.0,
    *,
    n_draws: int = 20,
    ridge=0.0,
    seed: int = 0,
) -> np.ndarray:
    """Test risk of least squares on the first ``p`` features, by simulation.

    For each ``p`` in ``ps`` and each of ``n_draws`` draws: ``n`` samples
    ``x ~ N(0, I_D)``, ``y = x.beta + noise**0.5 * eps``; fit on the first ``p``
    coordinates (minimum norm, or ridge with penalty ``ridge``, a number or
    ``'optimal'`` for ``noise * (p/n) / ||beta||^2``); the risk
    ``E[(y - x.b)^2] = ||b - beta||^2 + noise`` is exact for each fit.

    Returns
    -------
    numpy.ndarray, shape (n_draws, len(ps))
    """
    n = check_int("n", n, minimum=1)
    beta = _array("beta", beta, 1)
    ps = _int_list("ps", ps)
    if max(ps) > beta.size:
        raise ValueError(f"ps must not exceed len(beta) = {beta.size}, got {max(ps)}")
    noise = check_float("noise", noise, nonnegative=True)
    n_draws = check_int("n_draws", n_draws, minimum=1)
    if ridge != "optimal":
        if isinstance(ridge, str):
            raise ValueError(f"ridge must be a number >= 0 or 'optimal', got {ridge!r}")
        ridge = check_float("ridge", ridge, nonnegative=True)
    rng = numpy_generator(seed)
    risks = np.empty((n_draws, len(ps)))
    for j, p in enumerate(ps):
        x = rng.standard_normal((n_draws, n, beta.size))
        y = x @ beta + np.sqrt(noise) * rng.standard_normal((n_draws, n))
        lam = noise * (p / n) / float(beta @ beta) if ridge == "optimal" else ridge
        # b minimises ||y - x b||^2 / n + lam ||b||^2 on the first p features (the
        # minimum-norm fit for lam = 0), through the smaller of the Gram matrices
        xp, xt = x[:, :, :p], np.swapaxes(x[:, :, :p], 1, 2)
        if p <= n:
            b = np.linalg.solve(xt @ xp + n * lam * np.eye(p), xt @ y[..., None])
        else:
            b = xt @ np.linalg.solve(xp @ xt + n * lam * np.eye(n), y[..., None])
        err = b[..., 0] - beta[:p]
        risks[:, j] = (err**2).sum(axis=1) + (beta[p:] ** 2).sum() + noise
    return risks


def random_features_sweep(
    x_train,
    y_train,
    x_test,
    y_test,
    n_features,
    *,
    n_draws: int = 5,
    n_classes: int = 10,
    seed: int = 0,
) -> dict:
    """Random ReLU features with a minimum-norm least-squares read-out.

    The first layer ``relu(x W / sqrt(d))`` is random and frozen (``W`` standard
    Gaussian); the second layer is the minimum-norm least-squares fit to one-hot
    targets. One draw of ``W`` per repetition, shared by all widths (the first
    ``N`` columns are used for width ``N``).

    Returns
    -------
    dict
        ``'test_mse'``, ``'test_error'``, ``'train_mse'``, ``'norm'``: arrays of
        shape ``(n_draws, len(n_features))`` (the norm is the read-out's
        Frobenius norm).
    """
    x_train = _array("x_train", x_train, 2)
    x_test = _array("x_test", x_test, 2)
    y_train = np.asarray(y_train)
    y_test = np.asarray(y_test)
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(
            "x_train and x_test must have the same number of columns, got shapes "
            f"{x_train.shape} and {x_test.shape}"
        )
    n_features = _int_list("n_features", n_features)
    n_draws = check_int("n_draws", n_draws, minimum=1)
    rng = numpy_generator(seed)
    d = x_train.shape[1]
    target = np.eye(n_classes)[y_train]
    target_test = np.eye(n_classes)[y_test]
    rows = []
    for _ in range(n_draws):
        w = rng.standard_normal((d, max(n_features))) / np.sqrt(d)
        phi_train = np.maximum(x_train @ w, 0)
        phi_test = np.maximum(x_test @ w, 0)
        for m in n_features:
            a = np.linalg.lstsq(phi_train[:, :m], target, rcond=None)[0]
            pred = phi_test[:, :m] @ a
            fit = phi_train[:, :m] @ a
            rows.append(
                {
                    "test_mse": ((pred - target_test) ** 2).sum(axis=1).mean(),
                    "test_error": (pred.argmax(axis=1) != y_test).mean(),
                    "train_mse": ((fit - target) ** 2).sum(axis=1).mean(),
                    "norm": np.linalg.norm(a),
                }
            )
    return _stack(rows, (n_draws, len(n_features)))


# ---------------------------------------------------------------------------
# 2. Memorisation
# ---------------------------------------------------------------------------


def corrupt_labels(labels, fraction: float, n_classes: int = 10, *, seed: int = 0):
    """Replace a random ``fraction`` of ``labels`` by labels drawn uniformly.

    As in Zhang et al. (2017), a corrupted label is redrawn from all classes, so
    it keeps its true value with probability ``1/n_classes``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be a vector of integers, got {labels!r}")
    fraction = check_float("fraction", fraction, minimum=0.0, maximum=1.0)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    rng = numpy_generator(seed)
    out = labels.copy()
    n_bad = round(fraction * len(labels))
    idx = rng.permutation(len(labels))[:n_bad]
    out[idx] = rng.integers(0, n_classes, size=n_bad)
    return out


def noisy_interpolator_accuracy(
    fraction, clean_accuracy: float, n_classes: int = 10
) -> np.ndarray:
    """Expected test accuracy of a rule that copies one training label.

    A predictor that answers each test point with the (possibly corrupted) label
    of one training point, e.g. its nearest neighbour, is right with
    probability ``(1 - f) * a + f / n_classes`` when a fraction ``f`` of labels
    is redrawn uniformly and ``a`` is its accuracy on clean labels.
    """
    f = np.asarray(fraction, dtype=float)
    if np.any(f < 0) or np.any(f > 1) or not np.all(np.isfinite(f)):
        raise ValueError(f"fraction must lie in [0, 1], got {fraction!r}")
    a = check_float("clean_accuracy", clean_accuracy, minimum=0.0, maximum=1.0)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    return (1 - f) * a + f / n_classes


def nearest_neighbour_predict(x_train, y_train, x_test) -> np.ndarray:
    """Label of each test point's nearest training point (Euclidean)."""
    x_train = np.asarray(x_train, dtype=float)
    x_test = np.asarray(x_test, dtype=float)
    # squared distances less the test point's own norm, which no argmin needs
    d2 = (x_train**2).sum(1) - 2 * x_test @ x_train.T
    return np.asarray(y_train)[d2.argmin(axis=1)]


@dataclass
class MemorisationRun:
    """Training curves of ``n_repeats`` classifiers at each of ``k`` noise levels.

    Attributes
    ----------
    steps : numpy.ndarray, shape (n_records,)
    train_accuracy, test_accuracy : numpy.ndarray, shape (n_records, k, n_repeats)
        Accuracy on the (corrupted) training labels and on the clean test labels.
    steps_to_fit : numpy.ndarray, shape (k, n_repeats)
        First step with 100 % training accuracy (``-1`` if never).
    """

    steps: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray
    steps_to_fit: np.ndarray


def memorisation_sweep(
    x_train,
    y_train,
    x_test,
    y_test,
    fractions,
    *,
    n_repeats: int = 3,
    width: int = 256,
    lr: float = 0.01,
    max_steps: int = 500,
    record_every: int = 5,
    seed: int = 0,
) -> MemorisationRun:
    """Train ``n_repeats`` ReLU classifiers per corruption level, all as one batch.

    Each member is a network with one hidden layer of ``width`` units
    (:class:`whydeep.nets.BatchedMLP`, He scale), trained full batch with Adam
    on the cross-entropy of its own labels: the training labels with a
    fraction ``fractions[k]`` corrupted by :func:`corrupt_labels` (a fresh
    corruption and initialisation per repeat). Training stops when every
    member fits its labels at the same step, or after ``max_steps``.
    """
    fractions = _array("fractions", fractions, 1)
    n_repeats = check_int("n_repeats", n_repeats, minimum=1)
    width = check_int("width", width, minimum=1)
    lr = check_float("lr", lr, positive=True)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    record_every = check_int("record_every", record_every, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    member_fractions = np.repeat(fractions, n_repeats)
    labels = np.stack(
        [
            corrupt_labels(y_train, f, seed=seed + 1 + k)
            for k, f in enumerate(member_fractions)
        ]
    )
    k = len(member_fractions)
    xtr = torch.as_tensor(np.asarray(x_train), dtype=torch.float32)
    xte = torch.as_tensor(np.asarray(x_test), dtype=torch.float32)
    ytr = torch.as_tensor(labels, dtype=torch.int64)
    yte = torch.as_tensor(np.asarray(y_test), dtype=torch.int64)
    net = BatchedMLP(
        xtr.shape[1],
        [width] * k,
        2,
        "relu",
        n_out=10,
        sigma=2**0.5,
        bias=True,
        seed=seed,
    )
    adam = _Adam(list(net.parameters()), lr)
    steps, train_acc, test_acc = [], [], []
    fitted = np.full(k, -1)
    for step in range(max_steps + 1):
        logits = net(xtr)
        correct = (logits.argmax(-1) == ytr).double().mean(-1).numpy()
        fitted[(correct == 1.0) & (fitted < 0)] = step
        done = bool(np.all(correct == 1.0))
        if step % record_every == 0 or done or step == max_steps:
            with torch.no_grad():
                test = (net(xte).argmax(-1) == yte).double().mean(-1).numpy()
            steps.append(step)
            train_acc.append(correct)
            test_acc.append(test)
        if done or step == max_steps:
            break
        # the sum over members of each member's mean loss: members stay independent
        adam.step(F.cross_entropy(logits.reshape(-1, 10), ytr.reshape(-1)) * k)
    shape = (len(steps), len(fractions), n_repeats)
    return MemorisationRun(
        steps=np.array(steps),
        train_accuracy=np.array(train_acc).reshape(shape),
        test_accuracy=np.array(test_acc).reshape(shape),
        steps_to_fit=fitted.reshape(len(fractions), n_repeats),
    )


# ---------------------------------------------------------------------------
# 3. Implicit bias
# ---------------------------------------------------------------------------


def gd_least_squares(x, y, w0, *, lr: float | None = None, n_steps: int = 2000):
    """Gradient descent on ``||x w - y||^2 / (2 n)`` from ``w0``.

    ``lr`` defaults to ``1 / lambda_max(x^T x / n)``, inside the stable range
    ``(0, 2 / lambda_max)``.
    """
    x = _array("x", x, 2)
    y = _array("y", y, 1)
    w = _array("w0", w0, 1).copy()
    if y.shape[0] != x.shape[0] or w.shape[0] != x.shape[1]:
        raise ValueError(
            f"x, y and w0 must have shapes (n, p), (n,), (p,), got {x.shape}, "
            f"{y.shape}, {w.shape}"
        )
    n = x.shape[0]
    gram = x.T @ x if x.shape[1] <= n else x @ x.T  # the smaller, same top
    lr = 1 / np.linalg.eigvalsh(gram / n)[-1] if lr is None else lr
    lr = check_float("lr", lr, positive=True)
    n_steps = check_int("n_steps", n_steps, minimum=0)
    for _ in range(n_steps):
        w -= lr * x.T @ (x @ w - y) / n
    return w


def interpolant_from(x, y, w0) -> np.ndarray:
    """``w0 + x^+ (y - x w0)``: the interpolating solution closest to ``w0``."""
    x = _array("x", x, 2)
    return w0 + np.linalg.pinv(x) @ (y - x @ w0)


def effective_rank(matrix) -> float:
    """Effective rank of Roy and Vetterli: ``exp`` of the entropy of the
    normalised singular values."""
    s = np.linalg.svd(_array("matrix", matrix, 2), compute_uv=False)
    if s.sum() == 0:
        raise ValueError("matrix must not be zero")
    p = s[s > 0] / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def completion_error(estimate, target, mask) -> float:
    """Relative error on the unobserved entries,
    ``||(estimate - target)[~mask]|| / ||target[~mask]||``."""
    estimate = _array("estimate", estimate, 2)
    target = _array("target", target, 2)
    mask = np.asarray(mask, dtype=bool)
    if estimate.shape != target.shape or mask.shape != target.shape:
        raise ValueError(
            f"estimate, target and mask must have one shape, got {estimate.shape}, "
            f"{target.shape}, {mask.shape}"
        )
    if mask.all():
        raise ValueError("mask must leave at least one entry unobserved")
    return _relative_change(estimate[~mask], target[~mask])


def completion_problem(
    size: int, rank: int, n_observed: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A random ``size x size`` matrix of rank ``rank`` and a mask of observed entries.

    The matrix is ``U V^T`` with standard Gaussian factors, scaled to a top
    singular value of one; ``n_observed`` entries chosen uniformly are observed.
    """
    size = check_int("size", size, minimum=2)
    rank = check_int("rank", rank, minimum=1, maximum=size)
    n_observed = check_int("n_observed", n_observed, minimum=1, maximum=size * size)
    rng = numpy_generator(seed)
    target = rng.standard_normal((size, rank)) @ rng.standard_normal((rank, size))
    target /= np.linalg.norm(target, 2)
    mask = np.zeros(size * size, dtype=bool)
    mask[rng.permutation(size * size)[:n_observed]] = True
    return target, mask.reshape(size, size)


def balanced_factors(end_to_end: np.ndarray, depth: int, *, seed: int = 0):
    """Factors ``W_depth ... W_1 = end_to_end`` that are exactly balanced,
    ``W_{j+1}^T W_{j+1} = W_j W_j^T``, with random orthogonal inner bases."""
    depth = check_int("depth", depth, minimum=1)
    a = _array("end_to_end", end_to_end, 2)
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"end_to_end must be square, got shape {a.shape}")
    rng = numpy_generator(seed)
    u, s, vt = np.linalg.svd(a)
    root = np.diag(s ** (1 / depth))
    inner = [np.linalg.qr(rng.standard_normal(a.shape))[0] for _ in range(depth - 1)]
    bases = [vt.T, *inner, u]
    return [bases[j + 1] @ root @ bases[j].T for j in range(depth)]


@dataclass
class FactorizationRun:
    """A deep matrix factorisation trained by gradient descent.

    Attributes
    ----------
    steps : numpy.ndarray, shape (n_records,)
    singular_values : numpy.ndarray, shape (n_records, size)
        Of the end-to-end matrix, largest first.
    predicted_rate, measured_rate : numpy.ndarray, shape (n_records - 1, n_top)
        The top singular values' change per step, measured over one step and
        as Arora et al.'s formula gives it at the start of that step.
    end_to_end : numpy.ndarray, shape (size, size)
        The final product ``W_depth ... W_1``.
    """

    steps: np.ndarray
    singular_values: np.ndarray
    predicted_rate: np.ndarray
    measured_rate: np.ndarray
    end_to_end: np.ndarray


def _product(weights) -> np.ndarray:
    """``W_N ... W_1`` for ``weights = [W_1, ..., W_N]``."""
    return functools.reduce(lambda out, w: w @ out, weights[1:], weights[0])


def train_factorization(
    target,
    mask,
    depth: int,
    *,
    init_scale: float = 1e-3,
    lr: float = 0.1,
    n_steps: int = 5000,
    record_every: int = 50,
    n_top: int = 3,
    seed: int = 0,
) -> FactorizationRun:
    """Gradient descent on ``l(W) = ||mask * (W - target)||^2 / 2`` over the
    factors of ``W = W_depth ... W_1``, from a balanced start of size
    ``init_scale`` (the end-to-end matrix starts as ``init_scale`` times a random
    matrix with unit top singular value).

    At every record, the top ``n_top`` singular values' change over the next step
    is measured and compared with the gradient-flow formula of Arora, Cohen, Hu
    and Luo (2019), ``d sigma_r / dt = -N sigma_r^(2 - 2/N) <grad l(W), u_r v_r^T>``,
    times ``lr``.
    """
    target = _array("target", target, 2)
    mask = np.asarray(mask)
    if mask.shape != target.shape or mask.dtype != bool:
        raise ValueError(
            f"mask must be a boolean array of shape {target.shape}, got "
            f"{mask.dtype} {mask.shape}"
        )
    depth = check_int("depth", depth, minimum=1)
    init_scale = check_float("init_scale", init_scale, positive=True)
    lr = check_float("lr", lr, positive=True)
    n_steps = check_int("n_steps", n_steps, minimum=1)
    record_every = check_int("record_every", record_every, minimum=1)
    n_top = check_int("n_top", n_top, minimum=1, maximum=target.shape[0])
    seed = check_int("seed", seed, minimum=0)
    rng = numpy_generator(seed)
    start = rng.standard_normal(target.shape)
    start *= init_scale / np.linalg.norm(start, 2)
    weights = balanced_factors(start, depth, seed=seed + 1)
    steps, svals, predicted, measured = [], [], [], []
    for step in range(n_steps + 1):
        w = _product(weights)
        grad_w = mask * (w - target)
        recording = step % record_every == 0 or step == n_steps
        if recording:
            u, s, vt = np.linalg.svd(w)
            steps.append(step)
            svals.append(s)
            top = s[:n_top]
            inner = np.einsum("ir,ij,rj->r", u[:, :n_top], grad_w, vt[:n_top])
            rate = -lr * depth * top ** (2 - 2 / depth) * inner
        if step == n_steps:
            break
        # gradient of the layer j: (W_N..W_{j+1})^T grad_w (W_{j-1}..W_1)^T
        grads = []
        for j in range(depth):
            g = grad_w if j == depth - 1 else _product(weights[j + 1 :]).T @ grad_w
            grads.append(g if j == 0 else g @ _product(weights[:j]).T)
        weights = [w_j - lr * g for w_j, g in zip(weights, grads, strict=True)]
        if recording:
            after = np.linalg.svd(_product(weights), compute_uv=False)[:n_top]
            predicted.append(rate)
            measured.append(after - top)
    return FactorizationRun(
        steps=np.array(steps),
        singular_values=np.array(svals),
        predicted_rate=np.array(predicted),
        measured_rate=np.array(measured),
        end_to_end=_product(weights),
    )


# ---------------------------------------------------------------------------
# 4. The neural tangent kernel of a two-layer ReLU network
# ---------------------------------------------------------------------------


def circle_points(angles) -> np.ndarray:
    """Points ``(cos t, sin t)`` on the unit circle, shape ``(len(angles), 2)``."""
    t = _array("angles", angles, 1)
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def relu_ntk(x1, x2) -> np.ndarray:
    """Infinite-width tangent kernel of ``f(x) = a . relu(W x) / sqrt(m)`` with
    standard Gaussian ``W`` and ``a`` (both layers trained).

    With ``theta`` the angle between ``x`` and ``x'``, the two arc-cosine kernels
    give ``|x||x'| (sin theta + (pi - theta) cos theta) / (2 pi)`` (from the
    second layer) plus ``x.x' (pi - theta) / (2 pi)`` (from the first).
    """
    x1 = _array("x1", x1, 2)
    x2 = _array("x2", x2, 2)
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(
            f"x1 and x2 must have the same dimension, got {x1.shape} and {x2.shape}"
        )
    n1 = np.linalg.norm(x1, axis=1)[:, None]
    n2 = np.linalg.norm(x2, axis=1)[None, :]
    dot = x1 @ x2.T
    cos = np.clip(dot / (n1 * n2), -1.0, 1.0)
    theta = np.arccos(cos)
    k1 = n1 * n2 * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)
    k0 = (np.pi - theta) / (2 * np.pi)
    return k1 + dot * k0


@dataclass
class TwoLayer:
    """Parameters of ``f(x) = a . relu(W x) / sqrt(m)``: ``w`` (m, d), ``a`` (m,)."""

    w: np.ndarray
    a: np.ndarray

    @property
    def width(self) -> int:
        return self.a.shape[0]

    def features(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x @ self.w.T, 0.0)

    def __call__(self, x) -> np.ndarray:
        return self.features(np.asarray(x, dtype=float)) @ self.a / np.sqrt(self.width)

    def ntk(self, x1, x2) -> np.ndarray:
        """The empirical tangent kernel ``grad f(x1) . grad f(x2)``."""
        h1, h2 = x1 @ self.w.T, x2 @ self.w.T
        second = np.maximum(h1, 0) @ np.maximum(h2, 0).T
        first = ((h1 > 0) * self.a**2) @ (h2 > 0).T * (x1 @ x2.T)
        return (second + first) / self.width


def two_layer(dim: int, width: int, *, seed: int = 0) -> TwoLayer:
    """A two-layer ReLU network in the tangent-kernel scaling, standard Gaussian
    weights."""
    dim = check_int("dim", dim, minimum=1)
    width = check_int("width", width, minimum=1)
    rng = numpy_generator(seed)
    return TwoLayer(rng.standard_normal((width, dim)), rng.standard_normal(width))


def ntk_deviation(x, widths, *, n_draws: int = 10, seed: int = 0) -> np.ndarray:
    """Relative Frobenius distance of the empirical kernel at initialisation
    from :func:`relu_ntk`, shape ``(n_draws, len(widths))``."""
    x = _array("x", x, 2)
    widths = _int_list("widths", widths)
    n_draws = check_int("n_draws", n_draws, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    exact = relu_ntk(x, x)
    out = np.empty((n_draws, len(widths)))
    for r, (j, m) in itertools.product(range(n_draws), enumerate(widths)):
        net = two_layer(x.shape[1], m, seed=seed + 1000 * r + j)
        out[r, j] = _relative_change(net.ntk(x, x), exact)
    return out


@dataclass
class LazyRun:
    """A two-layer network trained by gradient descent on a scaled loss.

    Attributes
    ----------
    net0, net : TwoLayer
        The network at initialisation and after training.
    alpha : float
        The output scale: the model is ``alpha * (f(x) - f_0(x))``.
    loss : numpy.ndarray
        Training loss ``mean((model - y)^2) / 2`` at every step.
    weight_change : float
        ``||theta_T - theta_0|| / ||theta_0||``.
    kernel_change : float
        Relative Frobenius change of the tangent kernel on the training inputs.
    """

    net0: TwoLayer
    net: TwoLayer
    alpha: float
    loss: np.ndarray
    weight_change: float
    kernel_change: float

    def predict(self, x) -> np.ndarray:
        return self.alpha * (self.net(x) - self.net0(x))


def train_two_layer(
    x,
    y,
    width: int,
    *,
    alpha: float = 1.0,
    lr: float = 0.5,
    n_steps: int = 1000,
    seed: int = 0,
) -> LazyRun:
    """Gradient descent on ``mean((alpha (f - f_0) - y)^2) / (2 alpha^2)``.

    The model ``alpha (f - f_0)`` starts at zero whatever ``alpha``; the loss
    is divided by ``alpha^2`` so that its function-space dynamics at the start do
    not depend on ``alpha`` (Chizat, Oyallon and Bach 2019): a large ``alpha``
    reaches the same outputs with weights that move ``1/alpha`` as far.
    """
    x = _array("x", x, 2)
    y = _array("y", y, 1)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"x and y must have as many rows, got {x.shape}, {y.shape}")
    alpha = check_float("alpha", alpha, positive=True)
    lr = check_float("lr", lr, positive=True)
    n_steps = check_int("n_steps", n_steps, minimum=1)
    net0 = two_layer(x.shape[1], width, seed=seed)
    net = TwoLayer(net0.w.copy(), net0.a.copy())
    n, m = x.shape[0], net.width
    f0 = net0(x)
    losses = np.empty(n_steps + 1)
    for step in range(n_steps + 1):
        h = x @ net.w.T
        r = np.maximum(h, 0)
        resid = alpha * (r @ net.a / np.sqrt(m) - f0) - y
        losses[step] = 0.5 * np.mean(resid**2)
        if step == n_steps:
            break
        g = resid / (alpha * n)  # d loss / d f
        grad_w = ((h > 0) * g[:, None] * net.a[None, :]).T @ x / np.sqrt(m)
        net.a -= lr * (r.T @ g / np.sqrt(m))
        net.w -= lr * grad_w
    theta0 = np.concatenate([net0.w.ravel(), net0.a])
    theta = np.concatenate([net.w.ravel(), net.a])
    return LazyRun(
        net0=net0,
        net=net,
        alpha=alpha,
        loss=losses,
        weight_change=_relative_change(theta, theta0),
        kernel_change=_relative_change(net.ntk(x, x), net0.ntk(x, x)),
    )


def linearized_prediction(kernel_train, kernel_test, y, lr: float, n_steps: int):
    """Outputs of the linearised model after ``n_steps`` of gradient descent.

    For the loss ``mean((f - y)^2) / 2`` from ``f = 0``, the linearised network
    obeys ``f_t = (I - (lr/n) K)^t`` acting on ``f_0 - y``, so on the training set
    ``f_t = y - (I - (lr/n) K)^t y``; elsewhere
    ``f_t(x) = K(x, X) K^{-1} (y - (I - (lr/n) K)^t y)`` (Lee et al. 2019).

    Returns
    -------
    train, test : numpy.ndarray
    """
    k = _array("kernel_train", kernel_train, 2)
    kx = _array("kernel_test", kernel_test, 2)
    y = _array("y", y, 1)
    lr = check_float("lr", lr, positive=True)
    n_steps = check_int("n_steps", n_steps, minimum=0)
    n = len(y)
    evals, evecs = np.linalg.eigh(k)
    decay = (1 - lr / n * evals) ** n_steps
    coeff = evecs.T @ y
    train = evecs @ ((1 - decay) * coeff)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(evals > 0, (1 - decay) / evals, lr / n * n_steps)
    test = kx @ (evecs @ (weights * coeff))
    return train, test


def lazy_sweep(
    x,
    y,
    x_test,
    widths,
    *,
    alphas=(1.0,),
    lr: float = 1.0,
    n_steps: int = 300,
    n_draws: int = 3,
    seed: int = 0,
) -> dict:
    """Train two-layer networks of several widths and output scales and compare
    each with its linearisation around initialisation.

    Returns
    -------
    dict
        ``'kernel_change'``, ``'weight_change'``, ``'deviation'`` (root mean
        square gap between the network and its linearised model
        :func:`linearized_prediction` on ``x_test``, after ``n_steps``) and
        ``'train_loss'``: arrays of shape ``(n_draws, len(widths), len(alphas))``;
        ``'predictions'``: shape ``(n_draws, len(widths), len(alphas),
        len(x_test))``; ``'linearized'``: same shape.
    """
    x = _array("x", x, 2)
    x_test = _array("x_test", x_test, 2)
    widths = _int_list("widths", widths)
    alphas = _array("alphas", alphas, positive=True)
    n_draws = check_int("n_draws", n_draws, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    rows = []
    for r, m, alpha in itertools.product(range(n_draws), widths, alphas):
        run = train_two_layer(
            x, y, m, alpha=alpha, lr=lr, n_steps=n_steps, seed=seed + r
        )
        k, kx = run.net0.ntk(x, x), run.net0.ntk(x_test, x)
        lin = linearized_prediction(k, kx, y, lr, n_steps)[1]
        pred = run.predict(x_test)
        rows.append(
            {
                "kernel_change": run.kernel_change,
                "weight_change": run.weight_change,
                "deviation": np.sqrt(np.mean((pred - lin) ** 2)),
                "train_loss": run.loss[-1],
                "predictions": pred,
                "linearized": lin,
            }
        )
    return _stack(rows, (n_draws, len(widths), len(alphas)))


# ---------------------------------------------------------------------------
# 5. Sharpness
# ---------------------------------------------------------------------------


@dataclass
class SharpnessRun:
    """A small classifier trained by (mini-batch) gradient descent on the mean
    squared error to one-hot targets, with its sharpness tracked.

    Attributes
    ----------
    steps : numpy.ndarray
        Steps at which the sharpness was measured.
    sharpness : numpy.ndarray
        Top eigenvalue of the full-batch training loss's Hessian at those steps.
    loss_steps, loss : numpy.ndarray
        Full-batch training loss at ``loss_steps`` (every step for full-batch
        training, the last step otherwise).
    test_error : float
        Test classification error at the end.
    """

    steps: np.ndarray
    sharpness: np.ndarray
    loss_steps: np.ndarray
    loss: np.ndarray
    test_error: float


def train_tracking_sharpness(
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    width: int = 32,
    depth: int = 2,
    lr: float = 0.1,
    batch_size: int | None = None,
    n_steps: int = 1000,
    sharpness_every: int | None = 25,
    power_iterations: int = 20,
    seed: int = 0,
) -> SharpnessRun:
    """Gradient descent on a tanh network (:func:`whydeep.nets.mlp` of depth
    ``depth``, i.e. ``depth - 1`` hidden layers), tracking ``lambda_max``.

    The loss is the mean squared error to one-hot targets
    (:func:`whydeep.autodiff.flat_loss`); ``lambda_max`` is found by power
    iteration on Hessian-vector products
    (:func:`whydeep.autodiff.top_hessian_eigenvalue`). ``batch_size=None`` is
    full-batch gradient descent; otherwise each step uses a fresh random
    mini-batch (sampled without replacement within an epoch).
    ``sharpness_every=None`` measures the sharpness at the end only.
    """
    x_train = torch.as_tensor(np.asarray(x_train), dtype=torch.float32)
    lr = check_float("lr", lr, positive=True)
    n = x_train.shape[0]
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, minimum=1, maximum=n)
    n_steps = check_int("n_steps", n_steps, minimum=1)
    if sharpness_every is not None:
        sharpness_every = check_int("sharpness_every", sharpness_every, minimum=1)
    power_iterations = check_int("power_iterations", power_iterations, minimum=1)
    # mlp checks width, depth and seed
    model = mlp(x_train.shape[1], width, depth, "tanh", n_out=10, seed=seed)
    target = F.one_hot(torch.as_tensor(np.asarray(y_train)), 10).float()
    params = list(model.parameters())
    rng = numpy_generator(seed)
    order = np.array([], dtype=int)
    steps, sharp, loss_steps, losses = [], [], [], []
    for step in range(n_steps + 1):
        if (sharpness_every and step % sharpness_every == 0) or step == n_steps:
            loss_of, w = flat_loss(model, x_train, target)
            lam, _ = top_hessian_eigenvalue(
                loss_of, w, n_iter=power_iterations, tol=1e-4, seed=seed
            )
            steps.append(step)
            sharp.append(lam)
        if batch_size is not None and step < n_steps:  # a fresh mini-batch
            if len(order) < batch_size:
                order = np.concatenate([order, rng.permutation(n)])
            idx, order = order[:batch_size], order[batch_size:]
            loss = torch.mean((model(x_train[idx]) - target[idx]) ** 2)
        else:  # the full batch: trained on, or measured at the end
            loss = torch.mean((model(x_train) - target) ** 2)
            loss_steps.append(step)
            losses.append(float(loss.detach()))
        if step == n_steps:
            break
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.sub_(lr * g)
    with torch.no_grad():
        x_test = torch.as_tensor(np.asarray(x_test), dtype=torch.float32)
        predicted = model(x_test).argmax(1).numpy()
        error = float((predicted != np.asarray(y_test)).mean())
    return SharpnessRun(
        steps=np.array(steps),
        sharpness=np.array(sharp),
        loss_steps=np.array(loss_steps),
        loss=np.array(losses),
        test_error=error,
    )


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def plot_draws(ax, x, draws, *, center: str = "mean", color=None, label=None):
    """Plot repeated measurements: a dot at their mean (or median) and a bar over
    their middle half (first to third quartile), one per column of ``draws``."""
    draws = np.asarray(draws, dtype=float)
    x = np.asarray(x, dtype=float)
    if draws.ndim != 2 or draws.shape[1] != x.shape[0]:
        raise ValueError(
            f"draws must have shape (n_draws, {x.shape[0]}), got {draws.shape}"
        )
    check_choice("center", center, ("mean", "median"))
    mid = draws.mean(axis=0) if center == "mean" else np.median(draws, axis=0)
    lo, hi = np.percentile(draws, [25, 75], axis=0)
    ax.vlines(x, lo, hi, color=color, lw=1.5, alpha=0.6)
    ax.plot(x, mid, "o", ms=4, color=color, label=label)
