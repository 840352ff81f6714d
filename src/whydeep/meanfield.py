"""Mean-field theory of wide random networks (Poole et al. 2016, Schoenholz et al. 2017).

In a network whose weights are N(0, sigma_w**2 / fan_in) and biases N(0, sigma_b**2),
the pre-activations of a layer become Gaussian as the width grows. Their mean
square ``q`` follows the *length map* from layer to layer,

    q' = sigma_w**2 E[phi(sqrt(q) z)**2] + sigma_b**2,      z ~ N(0, 1),

which settles at a fixed point ``q*``. Two inputs at length ``q*`` with
correlation ``c`` move to correlation ``correlation_map(c)`` one layer deeper;
the slope of that map at ``c = 1`` is ``chi1``, the factor by which a layer
stretches the squared length of a small perturbation. Below ``chi1 = 1`` nearby
inputs merge (order), above it they separate (chaos), and ``depth_scale`` is the
number of layers over which correlations approach their fixed point.

Every function broadcasts over ``sigma_w`` and ``sigma_b`` (and ``q`` or ``c``).

How the expectations are computed
---------------------------------
A fixed Gauss–Hermite rule fails for ``tanh``: ``tanh'(sqrt(q) z)**2`` is a peak of
width ``1/sqrt(q)`` in ``z``. Here every expectation is the trapezoid rule on
``z in [0, 10]`` (the integrands are even; the Gaussian mass beyond 10 is 1e-23)
with step ``h <= 0.2 / sqrt(q)``. For integrands analytic in a strip, as these
are (the nearest poles of ``tanh`` lie ``pi / (2 sqrt(q))`` from the real axis),
the trapezoid rule converges geometrically: its error is about
``exp(-pi**2 / (h sqrt(q))) <= exp(-49)``. The number of nodes doubles with
``sqrt(q)``, so large ``q`` costs more nodes, never accuracy. The tests check
agreement with ``scipy.integrate.quad`` to a relative 1e-10.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import check_choice, check_float, check_int

#: The activations whose length map this module knows (tanh numerically,
#: relu and linear in closed form).
ACTIVATIONS = ("tanh", "relu", "linear")

_Z_MAX = 10.0
_BASE_NODES = 50  # intervals on [0, _Z_MAX] for sqrt(q) <= 1, i.e. h = 0.2


def _nodes(level: int):
    """Nodes ``z`` on ``[0, 10]`` and weights ``w`` with ``sum(w f(z)) = E[f(z)]``
    for even ``f``; step ``0.2 / 2**level``."""
    n = _BASE_NODES * 2**level
    z = np.linspace(0.0, _Z_MAX, n + 1)
    w = (2 * _Z_MAX / n) * np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    w[0] /= 2  # z = 0 counts once, every other node for itself and its mirror
    return z, w / w.sum()  # the rule is exact for constants


def _level(q) -> np.ndarray:
    """Smallest ``level`` with ``sqrt(q) <= 2**level``: step times ``sqrt(q)`` <= 0.2."""
    root = np.sqrt(np.maximum(q, 1.0))
    return np.maximum(0, np.ceil(np.log2(root) - 1e-12)).astype(int)


def _sech2(u):
    """``1 / cosh(u)**2`` without overflow for large ``|u|``."""
    e = np.exp(-2.0 * np.abs(u))
    return 4.0 * e / (1.0 + e) ** 2


def _tanh_square_curvature(u):
    """Half the second derivative of ``tanh(u)**2``: ``s (3 s - 2)``, s = sech(u)**2."""
    s = _sech2(u)
    return s * (3 * s - 2)


def _even_mean(f, q):
    """``E[f(sqrt(q) z)]`` for an even ``f`` and an array ``q >= 0``, z ~ N(0, 1)."""
    q = np.asarray(q, dtype=float)
    out = np.empty(q.shape)
    levels = _level(q)
    for level in np.unique(levels):
        at = levels == level
        z, w = _nodes(int(level))
        out[at] = f(np.sqrt(q[at])[:, None] * z) @ w
    out[q == 0] = f(0.0)  # exact, where the rule's weights sum to 1 only to rounding
    return out


def _check_sigmas(sigma_w, sigma_b):
    sigma_w = np.asarray(sigma_w, dtype=float)
    sigma_b = np.asarray(sigma_b, dtype=float)
    if not np.all(np.isfinite(sigma_w)) or np.any(sigma_w <= 0):
        raise ValueError(f"sigma_w must be finite and > 0, got {sigma_w!r}")
    if not np.all(np.isfinite(sigma_b)) or np.any(sigma_b < 0):
        raise ValueError(f"sigma_b must be finite and >= 0, got {sigma_b!r}")
    return sigma_w, sigma_b


def _check_q(q):
    q = np.asarray(q, dtype=float)
    if not np.all(np.isfinite(q)) or np.any(q < 0):
        raise ValueError(f"q must be finite and >= 0, got {q!r}")
    return q


def _mean_square(activation, q):
    """``E[phi(sqrt(q) z)**2]``."""
    if activation == "tanh":
        return _even_mean(lambda u: np.tanh(u) ** 2, q)
    return q * (0.5 if activation == "relu" else 1.0)


def _mean_square_slope(activation, q):
    """``E[phi'(sqrt(q) z)**2]``."""
    if activation == "tanh":
        return _even_mean(lambda u: _sech2(u) ** 2, q)
    return np.full(np.shape(q), 0.5 if activation == "relu" else 1.0)


def length_map(q, sigma_w, sigma_b=0.0, activation: str = "tanh"):
    """One layer of the length map, ``sigma_w**2 E[phi(sqrt(q) z)**2] + sigma_b**2``.

    ``q`` is the mean squared pre-activation of a layer, the result that of the
    next layer of an infinitely wide random network. Broadcasts over all three.
    """
    check_choice("activation", activation, ACTIVATIONS)
    sigma_w, sigma_b = _check_sigmas(sigma_w, sigma_b)
    q, sigma_w, sigma_b = np.broadcast_arrays(_check_q(q), sigma_w, sigma_b)
    return sigma_w**2 * _mean_square(activation, q) + sigma_b**2


def length_profile(
    q0, sigma_w, sigma_b=0.0, n_steps: int = 1, activation: str = "tanh"
) -> np.ndarray:
    """``q0`` followed by ``n_steps`` applications of :func:`length_map`.

    Returns shape ``(n_steps + 1, *broadcast shape)``: the mean squared
    pre-activation of ``n_steps + 1`` consecutive layers, ``q0`` first.
    """
    n_steps = check_int("n_steps", n_steps, minimum=0)
    q = np.asarray(_check_q(q0), dtype=float)
    out = [np.broadcast_to(q, np.broadcast_shapes(q.shape, np.shape(sigma_w)))]
    for _ in range(n_steps):
        out.append(length_map(out[-1], sigma_w, sigma_b, activation))
    return np.stack(np.broadcast_arrays(*out))


def fixed_point(sigma_w, sigma_b=0.0):
    """The stable fixed point ``q*`` of the ``tanh`` :func:`length_map`.

    Without bias and for ``sigma_w <= 1`` it is 0: the signal dies out. Otherwise
    Newton's method on ``length_map(q) - q``, safeguarded by bisection on
    ``[0, sigma_w**2 + sigma_b**2]``, converges to rounding error.
    """
    sigma_w, sigma_b = np.broadcast_arrays(*_check_sigmas(sigma_w, sigma_b))
    pairs, where = np.unique(
        np.stack([sigma_w.ravel(), sigma_b.ravel()]), axis=1, return_inverse=True
    )
    w2, b2 = pairs**2
    q = np.zeros(w2.shape)
    live = (b2 > 0) | (w2 > 1)
    w2, b2 = w2[live], b2[live]
    low, high = np.zeros(w2.shape), w2 + b2  # length_map(q) < sigma_w**2 + sigma_b**2
    x = high.copy()
    for _ in range(200):
        excess = w2 * _mean_square("tanh", x) + b2 - x
        # d/dq E[f(sqrt(q) z)] = E[f''(sqrt(q) z)] / 2, here f = tanh**2
        slope = w2 * _even_mean(_tanh_square_curvature, x)
        low, high = np.where(excess > 0, x, low), np.where(excess < 0, x, high)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = x - excess / (slope - 1.0)
        inside = (newton > low) & (newton < high)
        step = np.where(inside, newton, 0.5 * (low + high)) - x
        x = x + step
        # quadratic convergence: after a step of 1e-12 the error is below rounding
        if np.all(np.abs(step) <= 1e-12 * x):
            break
    q[live] = x
    return q[where.ravel()].reshape(sigma_w.shape)


def chi1(sigma_w, sigma_b=0.0, q=None, activation: str = "tanh"):
    """Mean squared slope of one layer, ``sigma_w**2 E[phi'(sqrt(q) z)**2]``.

    At ``q = q*`` (the default, ``tanh`` only) this is the factor by which the
    squared distance between two infinitesimally close inputs changes per layer:
    below 1 they merge (order), above 1 they separate (chaos).
    """
    check_choice("activation", activation, ACTIVATIONS)
    sigma_w, sigma_b = _check_sigmas(sigma_w, sigma_b)
    if q is None:
        check_choice("activation", activation, ("tanh",))
        q = fixed_point(sigma_w, sigma_b)
    q, sigma_w, _ = np.broadcast_arrays(_check_q(q), sigma_w, sigma_b)
    return sigma_w**2 * _mean_square_slope(activation, q)


def _pair_means(c, q):
    """``E[tanh(u1) tanh(u2)]`` and ``E[tanh'(u1) tanh'(u2)]`` for Gaussian
    ``u1, u2`` of variance ``q`` and correlation ``c`` (flat arrays)."""
    # u1 = a + b, u2 = a - b with independent a, b; with s = sech**2:
    # tanh(a+b) tanh(a-b) = (s_b - s_a) / d and tanh'(a+b) tanh'(a-b) = (s_a s_b / d)**2,
    # d = s_a + s_b - s_a s_b, so the double sum needs no transcendental per pair
    product, slopes = np.empty(c.shape), np.empty(c.shape)
    levels = _level(q)
    for level in np.unique(levels):
        at = np.flatnonzero(levels == level)
        z, w = _nodes(int(level))
        for chunk in np.array_split(at, max(1, len(at) * len(z) ** 2 // 4_000_000)):
            s_a = _sech2(np.sqrt(q[chunk] * (1 + c[chunk]) / 2)[:, None] * z)
            s_b = _sech2(np.sqrt(q[chunk] * (1 - c[chunk]) / 2)[:, None] * z)
            sa, sb = s_a[:, :, None], s_b[:, None, :]
            d = sa + sb - sa * sb
            both = w[:, None] * w[None, :]
            product[chunk] = np.einsum("kij,ij->k", (sb - sa) / d, both)
            slopes[chunk] = np.einsum("kij,ij->k", (sa * sb / d) ** 2, both)
    return product, slopes


def _correlation_terms(c, sigma_w, sigma_b):
    sigma_w, sigma_b = _check_sigmas(sigma_w, sigma_b)
    c = np.asarray(c, dtype=float)
    if not np.all(np.isfinite(c)) or np.any(np.abs(c) > 1):
        raise ValueError(f"c must lie in [-1, 1], got {c!r}")
    c, sigma_w, sigma_b = np.broadcast_arrays(c, sigma_w, sigma_b)
    q_star = fixed_point(sigma_w, sigma_b)
    means = _pair_means(c.ravel(), q_star.ravel())
    return c, sigma_w, sigma_b, q_star, *(m.reshape(c.shape) for m in means)


def correlation_map(c, sigma_w, sigma_b=0.0):
    """Correlation of two inputs one ``tanh`` layer deeper, both at length ``q*``.

    ``c`` is the correlation of their pre-activations (values in [-1, 1]). Where
    ``q* = 0`` the network is linear around its fixed point and the map is the
    identity. Broadcasts over all three arguments.
    """
    c, sigma_w, sigma_b, q_star, product, _ = _correlation_terms(c, sigma_w, sigma_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        mapped = (sigma_w**2 * product + sigma_b**2) / q_star
    # A correlation is at most 1 in magnitude; near c = 1 rounding can step past it.
    return np.where(q_star == 0, c, np.clip(mapped, -1.0, 1.0))


def correlation_slope(c, sigma_w, sigma_b=0.0):
    """Slope of :func:`correlation_map`, ``sigma_w**2 E[tanh'(u1) tanh'(u2)]``;
    at ``c = 1`` it is :func:`chi1`."""
    _, sigma_w, _, _, _, slopes = _correlation_terms(c, sigma_w, sigma_b)
    return sigma_w**2 * slopes


def iterate_correlation(c0: float, sigma_w: float, sigma_b: float, n_steps: int):
    """``c0`` followed by ``n_steps`` applications of :func:`correlation_map`."""
    c0 = check_float("c0", c0, minimum=-1.0, maximum=1.0)
    n_steps = check_int("n_steps", n_steps, minimum=1)
    out = [c0]
    for _ in range(n_steps):
        out.append(float(correlation_map(out[-1], sigma_w, sigma_b)))
    return np.array(out)


def correlation_fixed_point(sigma_w, sigma_b=0.0):
    """The stable fixed point ``c*`` of :func:`correlation_map`.

    It is 1 in the ordered phase (``chi1 <= 1``) and 0 in the chaotic phase without
    bias; with bias it is the root of ``correlation_map(c) - c`` below 1, found by
    Newton's method from ``c = 0`` safeguarded by bisection.
    """
    sigma_w, sigma_b = np.broadcast_arrays(*_check_sigmas(sigma_w, sigma_b))
    chaotic = chi1(sigma_w, sigma_b) > 1
    c_star = np.where(chaotic, 0.0, 1.0)
    solve = chaotic & (sigma_b > 0)
    w2, b2 = sigma_w[solve] ** 2, sigma_b[solve] ** 2
    q_star = fixed_point(sigma_w[solve], sigma_b[solve])
    low, high, c = np.zeros(w2.shape), np.ones(w2.shape), np.zeros(w2.shape)
    for _ in range(100):
        product, slopes = _pair_means(c, q_star)
        excess = (w2 * product + b2) / q_star - c  # > 0 below c*, < 0 above
        low, high = np.where(excess > 0, c, low), np.where(excess < 0, c, high)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = c - excess / (w2 * slopes - 1.0)
        inside = (newton > low) & (newton < high)
        step = np.where(inside, newton, 0.5 * (low + high)) - c
        c = c + step
        if np.all(np.abs(step) <= 1e-13):
            break
    c_star[solve] = c
    return c_star


def depth_scale(sigma_w, sigma_b=0.0):
    """Correlation depth scale ``xi_c = -1 / ln chi_c`` (Schoenholz et al. 2017).

    ``chi_c`` is the slope of :func:`correlation_map` at its stable fixed point
    ``c*``: correlations approach ``c*`` like ``exp(-depth / xi_c)``. In the ordered
    phase ``c* = 1`` and ``chi_c = chi1``; at the edge of chaos (``chi_c = 1``) the
    scale diverges and ``inf`` is returned.
    """
    sigma_w, sigma_b = np.broadcast_arrays(*_check_sigmas(sigma_w, sigma_b))
    shape, sigma_w, sigma_b = sigma_w.shape, sigma_w.ravel(), sigma_b.ravel()
    chi_c = chi1(sigma_w, sigma_b)
    chaotic = chi_c > 1
    w, b = sigma_w[chaotic], sigma_b[chaotic]
    chi_c[chaotic] = correlation_slope(correlation_fixed_point(w, b), w, b)
    with np.errstate(divide="ignore"):
        return np.where(chi_c >= 1, np.inf, -1.0 / np.log(chi_c)).reshape(shape)


__all__ = [
    "ACTIVATIONS",
    "chi1",
    "correlation_fixed_point",
    "correlation_map",
    "correlation_slope",
    "depth_scale",
    "fixed_point",
    "iterate_correlation",
    "length_map",
    "length_profile",
]
