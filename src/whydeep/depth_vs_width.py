"""Depth versus width: deep teachers, shallow students, order and chaos.

A random deep ``tanh`` network (the *teacher*) labels Gaussian inputs; *students*
of other shapes are trained to imitate it. Whether a shallow student can do so
depends on the teacher's weight scale ``sigma``, and the mean-field theory of
Poole et al. (2016) says why: below a critical scale a deep random network is
nearly linear (ordered), above it nearby inputs are driven apart layer after
layer (chaotic). This module holds the teacher and its data, the students'
training (a batched Levenberg–Marquardt fit, see
:func:`whydeep.training.fit_levenberg_marquardt`), and the simulations of wide
random networks that check the mean-field maps of :mod:`whydeep.meanfield`.

Conventions follow :mod:`whydeep.nets`: depth counts the input as a layer, weights
are N(0, sigma**2 / fan_in), and pre-activations obey
``h[l+1] = W[l+1] @ tanh(h[l]) + b[l+1]`` with bias standard deviation ``sigma_b``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._checks import check_float, check_int, numpy_generator, torch_generator
from ._runtime import progress_bar
from .meanfield import chi1, fixed_point, length_map
from .nets import BatchedMLP, linear_layers, mlp, phi_prime
from .training import History, fit_levenberg_marquardt

# ----------------------------------------------------------------------------
# teacher, data, students
# ----------------------------------------------------------------------------


def make_teacher(
    sigma: float, *, n_in: int = 5, width: int = 5, depth: int = 5, seed: int = 0
) -> torch.nn.Sequential:
    """A random ``tanh`` teacher network in float64, without bias.

    The raw Gaussian draw depends on ``seed`` only, so teachers with the same
    seed and different ``sigma`` are the same network with rescaled weights.

    Returns
    -------
    torch.nn.Sequential
        Maps ``(n_samples, n_in)`` to ``(n_samples, 1)``.
    """
    sigma = check_float("sigma", sigma, positive=True)
    return mlp(n_in, width, depth, "tanh", sigma=sigma, seed=seed, dtype=torch.float64)


def _teacher_layers(teacher) -> list[torch.nn.Linear]:
    """The ``nn.Linear`` layers of a network from :func:`make_teacher`."""
    if not isinstance(teacher, torch.nn.Sequential) or not isinstance(
        teacher[0], torch.nn.Linear
    ):
        raise ValueError(
            f"teacher must be a network from make_teacher, got {type(teacher).__name__}"
        )
    return linear_layers(teacher)


def teacher_data(teacher, n_samples: int, *, seed: int = 0):
    """Standard Gaussian inputs and the teacher's outputs (no gradient tracking).

    Returns
    -------
    x : torch.Tensor, shape (n_samples, n_in)
    y : torch.Tensor, shape (n_samples, 1)
    """
    n_samples = check_int("n_samples", n_samples, minimum=1)
    n_in = _teacher_layers(teacher)[0].in_features
    generator = torch_generator(seed)
    x = torch.randn(n_samples, n_in, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        y = teacher(x)
    return x, y


def relative_error(prediction, target) -> np.ndarray:
    """Mean squared error divided by the variance of the targets.

    ``prediction`` of shape ``(n_samples, 1)`` or ``(n_models, n_samples, 1)``;
    ``target`` of the same shape or broadcastable to it. Returns one value per
    model (a 0-d array for a single prediction).
    """
    prediction = torch.as_tensor(prediction)
    target = torch.as_tensor(target)
    if prediction.dim() < 2:
        raise ValueError(
            "prediction must have shape (n_samples, 1) or (n_models, n_samples, 1), "
            f"got {tuple(prediction.shape)}"
        )
    try:
        target = target.expand_as(prediction)
    except RuntimeError:
        raise ValueError(
            f"target of shape {tuple(target.shape)} does not broadcast to the "
            f"prediction's shape {tuple(prediction.shape)}"
        ) from None
    dims = tuple(range(prediction.dim() - 2, prediction.dim()))
    mse = ((prediction - target) ** 2).mean(dim=dims)
    return (mse / target.var(dim=dims)).detach().numpy()


@dataclass
class StudentFit:
    """Students trained on one data set and evaluated on another.

    Attributes
    ----------
    model : BatchedMLP
        The trained students (their widths in ``model.widths``, their numbers
        of weights in ``model.n_params()``).
    train_error, test_error : numpy.ndarray, shape (n_models,)
        Relative errors (MSE / target variance).
    history : History
        Training loss per Levenberg–Marquardt step, shape ``(n_steps + 1, n_models)``.
    """

    model: BatchedMLP
    train_error: np.ndarray
    test_error: np.ndarray
    history: History


def train_students(
    x_train,
    y_train,
    x_test,
    y_test,
    widths,
    *,
    depth: int = 2,
    sigma_init: float = 1.0,
    seed: int = 0,
    starts=None,
    max_steps: int = 300,
    tol: float = 1e-3,
    patience: int = 10,
    direct_max: int = 500,
    lbfgs_steps: int = 0,
    min_examples_per_param: float = 3.0,
) -> StudentFit:
    """Train ``tanh`` students of the given widths together, until each stops improving.

    In a live notebook a progress bar shows the steps (not in the built book).

    Parameters
    ----------
    x_train, x_test : torch.Tensor, shape (n_samples, n_in)
    y_train, y_test : torch.Tensor
        Shape ``(n_samples, 1)``, shared by all students, or
        ``(n_models, n_samples, 1)``, one teacher per student.
    widths : sequence of int
        Hidden width of each student.
    depth : int
        Depth of every student (2 = one hidden layer).
    sigma_init : float
        Gain of the students' initial weights.
    seed : int
        Seed of the initial weights (all members drawn together).
    starts : sequence of int, optional
        One seed per member instead: member ``k`` starts from the weights of
        ``mlp(n_in, widths[k], depth, sigma=sigma_init)`` drawn with seed
        ``starts[k]``, so that any start can be re-run alone.
    max_steps, tol, patience
        Stopping rule of :func:`whydeep.training.fit_levenberg_marquardt`.
    direct_max : int
        Students with at most this many weights solve each step's linear
        system exactly, larger ones by conjugate gradients (see
        :func:`whydeep.training.fit_levenberg_marquardt`).
    lbfgs_steps : int
        Iterations of full-batch L-BFGS (strong-Wolfe line search) before
        Levenberg–Marquardt takes over; see :func:`lbfgs_phase`.
    min_examples_per_param : float
        Refuse to train a student with fewer training examples per parameter.

    Returns
    -------
    StudentFit
    """
    widths = [check_int("widths[i]", w, minimum=1) for w in widths]
    depth = check_int("depth", depth, minimum=2)
    sigma_init = check_float("sigma_init", sigma_init, positive=True)
    min_examples_per_param = check_float(
        "min_examples_per_param", min_examples_per_param, nonnegative=True
    )
    lbfgs_steps = check_int("lbfgs_steps", lbfgs_steps, minimum=0)
    n_in, init = x_train.shape[1], {"sigma": sigma_init, "dtype": torch.float64}
    model = BatchedMLP(n_in, widths, depth, "tanh", seed=seed, **init)
    if starts is not None:
        starts = [check_int("starts[i]", k, minimum=0) for k in starts]
        if len(starts) != len(widths):
            raise ValueError(
                f"starts must hold one seed per member ({len(widths)}), "
                f"got {len(starts)}"
            )
        for k, (width, start) in enumerate(zip(widths, starts, strict=True)):
            net = mlp(n_in, width, depth, "tanh", seed=start, **init)
            model.set_members([k], [m.weight[None] for m in linear_layers(net)])
    n_params = max(model.n_params())
    if x_train.shape[0] < min_examples_per_param * n_params:
        raise ValueError(
            f"x_train must hold at least {min_examples_per_param} examples per parameter "
            f"({int(np.ceil(min_examples_per_param * n_params))} for width "
            f"{max(widths)}), got {x_train.shape[0]}"
        )
    if lbfgs_steps:
        lbfgs_phase(model, x_train, y_train, lbfgs_steps)
    history = fit_levenberg_marquardt(
        model,
        x_train,
        y_train,
        max_steps=max_steps,
        tol=tol,
        patience=patience,
        direct_max=direct_max,
        callback=progress_bar(max_steps, "training"),
    )
    with torch.no_grad():
        train_error = relative_error(model(x_train), y_train)
        test_error = relative_error(model(x_test), y_test)
    return StudentFit(model, train_error, test_error, history)


def lbfgs_phase(model: BatchedMLP, x, y, n_steps: int) -> None:
    """``n_steps`` iterations of full-batch L-BFGS on the members of ``model``.

    Members of equal width are optimised together, as one problem whose loss
    is the sum of their mean squared errors: their gradients stay separate, but
    they share L-BFGS's curvature memory and line search, so (unlike
    :func:`whydeep.training.fit_levenberg_marquardt`) a member's path depends
    on the other members of its width. Padding is left out, so a narrow member
    costs what its own width costs. Trains ``model`` in place.
    """
    if not isinstance(model, BatchedMLP) or model.biases is not None:
        raise ValueError(
            f"model must be a BatchedMLP without bias, got {type(model).__name__}"
        )
    n_steps = check_int("n_steps", n_steps, minimum=1)
    depth = len(model.weights)
    for idx, weights in model.width_groups():
        weights = [w.requires_grad_() for w in weights]
        target = y[idx] if y.dim() == 3 else y
        optimizer = torch.optim.LBFGS(
            weights,
            lr=1.0,
            max_iter=n_steps,
            history_size=50,
            line_search_fn="strong_wolfe",
            tolerance_grad=0.0,
            tolerance_change=0.0,
        )

        def closure(weights=weights, target=target, optimizer=optimizer):
            optimizer.zero_grad()
            h = x.expand(len(weights[0]), -1, -1)
            for i, w in enumerate(weights):
                h = torch.bmm(h, w.transpose(1, 2))
                if i < depth - 1:
                    h = torch.tanh(h)
            loss = ((h - target) ** 2).mean(dim=(1, 2)).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        model.set_members(idx, [w.detach() for w in weights])


def final_improvement(history: History, window: int) -> np.ndarray:
    """Relative fall of each member's training loss over its last ``window`` steps.

    ``1 - loss[end] / loss[end - window]`` with ``end`` the member's own last
    step (``history.extra['steps']``); near 0 means it had stopped improving.
    """
    window = check_int("window", window, minimum=1)
    steps = np.asarray(history.extra["steps"])
    loss = np.asarray(history.loss)
    if loss.ndim != 2 or loss.shape[1] != steps.shape[0]:
        raise ValueError(
            f"history must come from fit_levenberg_marquardt, got loss of shape "
            f"{loss.shape} and {steps.shape[0]} step counts"
        )
    members = np.arange(loss.shape[1])
    end = loss[steps, members]
    before = loss[np.maximum(steps - window, 0), members]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(before > 0, 1.0 - end / before, 0.0)


def width_for_error(target: float, exponent: float, prefactor: float) -> float:
    """Width at which ``prefactor * width**exponent`` equals ``target``."""
    target = check_float("target", target, positive=True)
    exponent = check_float("exponent", exponent)
    prefactor = check_float("prefactor", prefactor, positive=True)
    if exponent >= 0:
        raise ValueError(f"exponent must be < 0 for the error to fall, got {exponent}")
    return float((target / prefactor) ** (1.0 / exponent))


# ----------------------------------------------------------------------------
# mean-field theory
# ----------------------------------------------------------------------------


def predicted_length_growth(sigma_w: float, q_first: float, n_hidden: int):
    """Mean-field length of a curve in each layer, relative to the first.

    The squared length of a small piece of curve changes by
    ``chi1(sigma_w, q=q_l)`` from layer ``l`` to ``l + 1``, with ``q_l`` following the
    length map from ``q_first`` (no bias). Returns shape ``(n_hidden,)``.
    """
    sigma_w = check_float("sigma_w", sigma_w, positive=True)
    q = check_float("q_first", q_first, positive=True)
    n_hidden = check_int("n_hidden", n_hidden, minimum=1)
    growth = [1.0]
    for _ in range(n_hidden - 1):
        growth.append(growth[-1] * float(np.sqrt(chi1(sigma_w, 0.0, q=q))))
        q = float(length_map(q, sigma_w))
    return np.array(growth)


# ----------------------------------------------------------------------------
# simulations of wide random networks
# ----------------------------------------------------------------------------


def _circle(n_points: int, plane: np.ndarray, radius: float = 1.0):
    """``n_points`` equally spaced points of a circle of radius ``radius`` in the
    plane spanned by the two orthonormal columns of ``plane``, and the tangent
    vectors (derivatives with respect to the angle) there."""
    theta = np.linspace(0.0, 2.0 * np.pi, n_points, endpoint=False)
    x = radius * np.stack([np.cos(theta), np.sin(theta)], 1) @ plane.T
    dx = radius * np.stack([-np.sin(theta), np.cos(theta)], 1) @ plane.T
    return x, dx


def _curve_through(weights, x, dx):
    """Push a closed curve (points ``x`` at equally spaced angles, tangents ``dx``)
    through a ``tanh`` network without bias with weight matrices ``weights``.

    Returns the pre-activations of every layer and the length of the curve's
    image there, integrated from the exact tangent vectors.
    """
    h, dh = x @ weights[0].T, dx @ weights[0].T
    pre, lengths = [h], [np.mean(np.linalg.norm(dh, axis=1)) * 2 * np.pi]
    for w in weights[1:]:
        dh = (phi_prime("tanh", h) * dh) @ w.T
        h = np.tanh(h) @ w.T
        pre.append(h)
        lengths.append(np.mean(np.linalg.norm(dh, axis=1)) * 2 * np.pi)
    return pre, np.array(lengths)


def _random_layers(width, n_matrices, sigma_w, sigma_b, rng):
    weights = rng.standard_normal((n_matrices, width, width)) * sigma_w / np.sqrt(width)
    biases = rng.standard_normal((n_matrices, width)) * sigma_b
    return weights, biases


def simulate_wide_network(
    sigma_w: float,
    sigma_b: float = 0.0,
    *,
    width: int = 1000,
    n_hidden: int = 30,
    q_first: float = 1.0,
    n_inputs: int = 20,
    seed: int = 0,
):
    """Lengths and per-layer stretching in one wide random ``tanh`` network.

    ``n_inputs`` pre-activation vectors of mean square ``q_first`` enter the first
    layer; each carries a random infinitesimal perturbation, pushed forward
    through the layer Jacobians.

    Returns
    -------
    q : numpy.ndarray, shape (n_hidden,)
        Mean squared pre-activation per layer (averaged over inputs).
    stretch : numpy.ndarray, shape (n_hidden - 1,)
        Ratio of squared perturbation sizes between consecutive layers
        (averaged over inputs): an estimate of ``chi1`` at that layer's length.
    """
    sigma_w = check_float("sigma_w", sigma_w, positive=True)
    sigma_b = check_float("sigma_b", sigma_b, nonnegative=True)
    width = check_int("width", width, minimum=1)
    n_hidden = check_int("n_hidden", n_hidden, minimum=2)
    q_first = check_float("q_first", q_first, positive=True)
    n_inputs = check_int("n_inputs", n_inputs, minimum=1)
    rng = numpy_generator(seed)
    weights, biases = _random_layers(width, n_hidden - 1, sigma_w, sigma_b, rng)
    h = rng.standard_normal((n_inputs, width)) * np.sqrt(q_first)
    v = rng.standard_normal((n_inputs, width))
    q, stretch = [np.mean(h**2)], []
    for w, b in zip(weights, biases, strict=True):
        v_next = (phi_prime("tanh", h) * v) @ w.T
        h = np.tanh(h) @ w.T + b
        stretch.append(np.mean(np.sum(v_next**2, 1) / np.sum(v**2, 1)))
        # renormalise so that a shrinking perturbation does not underflow
        v = v_next / np.linalg.norm(v_next, axis=1, keepdims=True)
        q.append(np.mean(h**2))
    return np.array(q), np.array(stretch)


def simulate_correlation(
    c0: float,
    sigma_w: float,
    sigma_b: float,
    *,
    width: int = 1000,
    n_steps: int = 20,
    seed: int = 0,
):
    """Correlation per layer of two inputs that start at length ``q*`` with correlation ``c0``.

    Returns shape ``(n_steps + 1,)``, the starting correlation first.
    """
    c0 = check_float("c0", c0, minimum=-1.0, maximum=1.0)
    sigma_w = check_float("sigma_w", sigma_w, positive=True)
    sigma_b = check_float("sigma_b", sigma_b, nonnegative=True)
    width = check_int("width", width, minimum=1)
    n_steps = check_int("n_steps", n_steps, minimum=1)
    rng = numpy_generator(seed)
    q_star = max(float(fixed_point(sigma_w, sigma_b)), 1e-6)
    u, v = rng.standard_normal((2, width))
    h1 = np.sqrt(q_star) * u
    h2 = np.sqrt(q_star) * (c0 * u + np.sqrt(1 - c0**2) * v)
    weights, biases = _random_layers(width, n_steps, sigma_w, sigma_b, rng)
    out = [c0]
    for w, b in zip(weights, biases, strict=True):
        h1 = w @ np.tanh(h1) + b
        h2 = w @ np.tanh(h2) + b
        out.append(float(h1 @ h2 / np.sqrt((h1 @ h1) * (h2 @ h2))))
    return np.array(out)


def circle_through_network(
    sigma: float,
    *,
    width: int = 100,
    depth: int = 20,
    n_points: int = 400,
    seed: int = 0,
):
    """Push the unit circle through a random ``tanh`` network without bias.

    Returns
    -------
    pre : numpy.ndarray, shape (depth - 1, n_points, width)
        Pre-activations of every hidden layer at ``n_points`` equally spaced angles.
    lengths : numpy.ndarray, shape (depth - 1,)
        Length of the image of the circle in each layer's pre-activation space,
        integrated from the exact tangent vectors (not from chords, which miss the
        wiggles of a deep chaotic layer).
    """
    sigma = check_float("sigma", sigma, positive=True)
    width = check_int("width", width, minimum=1)
    depth = check_int("depth", depth, minimum=2)
    n_points = check_int("n_points", n_points, minimum=3)
    rng = numpy_generator(seed)
    w_first = rng.standard_normal((width, 2)) * sigma / np.sqrt(2)
    weights, _ = _random_layers(width, depth - 2, sigma, 0.0, rng)
    pre, lengths = _curve_through([w_first, *weights], *_circle(n_points, np.eye(2)))
    return np.array(pre), lengths


def sigma_sweep(
    sigmas,
    x_train,
    x_test,
    *,
    width: int = 10,
    teacher_seeds=(0,),
    seed: int = 0,
    **train_kwargs,
) -> StudentFit:
    """One shallow student of fixed ``width`` per teacher scale and teacher seed.

    Teachers with the same seed share one raw weight draw, so only the scale
    changes along a sweep. Member ``i * len(sigmas) + j`` learns the teacher of
    seed ``teacher_seeds[i]`` and scale ``sigmas[j]``; every member starts from
    its own random draw (from ``seed``). All are trained together, each on its
    own teacher's labels; ``train_kwargs`` go to :func:`train_students`.
    """
    sigmas = [check_float("sigmas[i]", s, positive=True) for s in sigmas]
    if not sigmas:
        raise ValueError("sigmas must hold at least one value, got []")
    teacher_seeds = [check_int("teacher_seeds[i]", t, minimum=0) for t in teacher_seeds]
    if not teacher_seeds:
        raise ValueError("teacher_seeds must hold at least one seed, got []")
    width = check_int("width", width, minimum=1)
    teachers = [make_teacher(s, seed=t) for t in teacher_seeds for s in sigmas]
    with torch.no_grad():
        y_train = torch.stack([t(x_train) for t in teachers])
        y_test = torch.stack([t(x_test) for t in teachers])
    return train_students(
        x_train,
        y_train,
        x_test,
        y_test,
        [width] * len(teachers),
        seed=seed,
        **train_kwargs,
    )


# ----------------------------------------------------------------------------
# how far a teacher is from linear: depth scale and its own stretching
# ----------------------------------------------------------------------------


def growth_depth_scale(sigma_w, sigma_b=0.0):
    """Layers over which a small perturbation's squared length changes by ``e``.

    ``1 / |ln chi1|``: in the ordered phase (``chi1 < 1``) this is the depth scale
    ``xi = -1 / ln chi1`` of Schoenholz et al. (2017) over which nearby inputs
    merge (equal to :func:`whydeep.meanfield.depth_scale` there); in the chaotic
    phase it is the number of layers over which they separate by a factor ``e``
    in squared distance. ``inf`` at ``chi1 = 1``. Broadcasts.
    """
    with np.errstate(divide="ignore"):
        return 1.0 / np.abs(np.log(chi1(sigma_w, sigma_b)))


def teacher_stretch(
    teacher, *, n_circles: int = 20, radius: float = 1.0, seed: int = 0
):
    """Length of the image of circles in every layer of a ``tanh`` network.

    Each circle has radius ``radius`` and lies in a random plane through the
    origin of the input space; its tangent vectors are pushed through the layer
    Jacobians exactly, so the lengths are those of the smooth image curves.

    Returns
    -------
    numpy.ndarray, shape (n_circles, n_layers)
        Length of each circle's image in the pre-activations of each hidden
        layer and of the output, the first hidden layer first.
    """
    n_circles = check_int("n_circles", n_circles, minimum=1)
    radius = check_float("radius", radius, positive=True)
    weights = [m.weight.detach().double().numpy() for m in _teacher_layers(teacher)]
    rng = numpy_generator(seed)
    out = np.empty((n_circles, len(weights)))
    for k in range(n_circles):
        plane, _ = np.linalg.qr(rng.standard_normal((weights[0].shape[1], 2)))
        out[k] = _curve_through(weights, *_circle(720, plane, radius))[1]
    return out
