"""Tests of whydeep.meanfield against adaptive quadrature and wide random networks."""

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq

from whydeep import meanfield as mf

SIGMA_W = (0.1, 0.5, 1.0, 1.001, 1.5, 2.5, 4.0, 5.0)
SIGMA_B = (0.0, 0.05, 0.5, 1.5, 2.0)


def gauss_mean(f, q):
    """E[f(sqrt(q) z)], z ~ N(0, 1), by scipy's adaptive quadrature."""

    def integrand(z):
        return f(math.sqrt(q) * z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    return quad(integrand, -12, 12, points=[0.0], epsabs=0, epsrel=1e-13, limit=500)[0]


def tanh2(u):
    return math.tanh(u) ** 2


def sech4(u):
    return (2.0 / (math.exp(u) + math.exp(-u))) ** 4 if abs(u) < 700 else 0.0


def quad_fixed_point(sigma_w, sigma_b):
    if sigma_b == 0 and sigma_w <= 1:
        return 0.0
    return brentq(
        lambda q: sigma_w**2 * gauss_mean(tanh2, q) + sigma_b**2 - q,
        1e-300 if sigma_b > 0 else 1e-8,
        sigma_w**2 + sigma_b**2,
        xtol=1e-300,
        rtol=1e-15,
        maxiter=200,
    )


def relative(a, b):
    return abs(a - b) / abs(b) if b else abs(a)


def test_fixed_point_and_chi1_match_adaptive_quadrature_to_1e_10():
    sw, sb = np.meshgrid(SIGMA_W, SIGMA_B, indexing="ij")
    q_star, chi = mf.fixed_point(sw, sb), mf.chi1(sw, sb)  # one broadcast call
    worst_q = worst_chi = 0.0
    for i, j in np.ndindex(sw.shape):
        q_ref = quad_fixed_point(sw[i, j], sb[i, j])
        chi_ref = sw[i, j] ** 2 * gauss_mean(sech4, q_ref)
        worst_q = max(worst_q, relative(q_star[i, j], q_ref))
        worst_chi = max(worst_chi, relative(chi[i, j], chi_ref))
    assert worst_q < 1e-10
    assert worst_chi < 1e-10


@pytest.mark.parametrize("q", [0.0, 1e-8, 1e-3, 0.7, 3.0, 29.0, 300.0, 1e4])
def test_length_map_and_slope_match_adaptive_quadrature(q):
    expected = 2.0**2 * gauss_mean(tanh2, q) + 0.3**2
    assert relative(float(mf.length_map(q, 2.0, 0.3)), expected) < 1e-10
    expected = 2.0**2 * gauss_mean(sech4, q)
    assert relative(float(mf.chi1(2.0, 0.3, q=q)), expected) < 1e-10


def quad_correlation(c, q):
    """E[tanh(u1) tanh(u2)], u ~ N(0, q [[1, c], [c, 1]]), nested adaptive quadrature."""
    root, s = math.sqrt(q), math.sqrt(max(0.0, 1 - c * c))

    def outer(z1):
        density = math.exp(-z1 * z1 / 2) / math.sqrt(2 * math.pi)
        inner = gauss_mean(lambda v: math.tanh(root * c * z1 + v), s * s * q)
        return math.tanh(root * z1) * inner * density

    return quad(outer, -12, 12, points=[0.0], epsabs=1e-15, epsrel=1e-13, limit=500)[0]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize(("sigma_w", "sigma_b"), [(1.5, 0.0), (2.0, 0.3), (5.0, 2.0)])
def test_correlation_map_matches_adaptive_quadrature(sigma_w, sigma_b):
    c = np.array([-1.0, -0.5, 0.0, 0.6, 0.99, 1.0])
    q_star = float(mf.fixed_point(sigma_w, sigma_b))
    expected = [
        (sigma_w**2 * quad_correlation(x, q_star) + sigma_b**2) / q_star for x in c
    ]
    # correlations lie in [-1, 1]: an absolute 1e-10 is a relative 1e-10 of the range
    np.testing.assert_allclose(
        mf.correlation_map(c, sigma_w, sigma_b), expected, atol=1e-10
    )


def test_correlation_map_fixes_one_and_has_slope_chi1():
    assert float(mf.correlation_map(1.0, 2.0, 0.3)) == pytest.approx(1.0, abs=1e-12)
    assert float(mf.correlation_slope(1.0, 2.0, 0.3)) == pytest.approx(
        float(mf.chi1(2.0, 0.3)), rel=1e-12
    )
    eps = 1e-5
    slope = (1.0 - float(mf.correlation_map(1.0 - eps, 2.0, 0.3))) / eps
    assert slope == pytest.approx(float(mf.chi1(2.0, 0.3)), rel=1e-3)


def test_chi1_is_one_at_the_edge_without_bias():
    assert float(mf.chi1(1.0)) == pytest.approx(1.0, abs=1e-12)
    assert float(mf.chi1(0.999)) < 1 < float(mf.chi1(1.001))
    # q* = 0 below the edge, so chi1 = sigma_w**2
    assert float(mf.chi1(0.8)) == pytest.approx(0.64, abs=1e-12)
    assert float(mf.fixed_point(0.9)) == 0.0


def test_fixed_point_is_a_fixed_point_and_broadcasts():
    sw = np.linspace(0.5, 5.0, 7)[:, None]
    sb = np.array([0.0, 0.4, 2.0])
    q_star = mf.fixed_point(sw, sb)
    assert q_star.shape == (7, 3)
    np.testing.assert_allclose(
        mf.length_map(q_star, sw, sb), q_star, rtol=1e-13, atol=1e-300
    )


def test_length_profile_iterates_the_length_map_for_every_activation():
    profile = mf.length_profile(1.0, 2.0, 0.5, n_steps=3)
    assert profile.shape == (4,)
    assert profile[2] == pytest.approx(
        float(mf.length_map(profile[1], 2.0, 0.5)), rel=1e-15
    )
    relu = mf.length_profile(1.0, math.sqrt(2.0), 0.0, n_steps=5, activation="relu")
    np.testing.assert_allclose(relu, 1.0)  # He's rule keeps the length
    linear = mf.length_profile(1.0, 0.5, 0.0, n_steps=2, activation="linear")
    np.testing.assert_allclose(linear, [1.0, 0.25, 0.0625])
    assert float(mf.chi1(math.sqrt(2.0), q=1.0, activation="relu")) == pytest.approx(
        1.0
    )


def test_depth_scale_follows_chi1_in_order_and_diverges_at_the_edge():
    # ordered phase: c* = 1, chi_c = chi1
    assert float(mf.depth_scale(0.5)) == pytest.approx(-1 / math.log(0.25), rel=1e-12)
    assert float(mf.depth_scale(1.0)) == math.inf
    xi = mf.depth_scale(np.array([1.1, 1.3, 2.0]), 0.3)
    chi = mf.chi1(np.array([1.1, 1.3, 2.0]), 0.3)
    # on the ordered side of the edge (chi1 < 1 at 1.1 and 1.3 with this bias)
    assert np.all(chi[:2] < 1)
    np.testing.assert_allclose(xi[:2], -1 / np.log(chi[:2]), rtol=1e-12)
    # chaotic side: c* < 1 is a fixed point, and its slope sets the scale
    c_star = float(mf.correlation_fixed_point(2.0, 0.3))
    assert 0 < c_star < 1
    assert float(mf.correlation_map(c_star, 2.0, 0.3)) == pytest.approx(
        c_star, abs=1e-12
    )
    slope = float(mf.correlation_slope(c_star, 2.0, 0.3))
    assert xi[2] == pytest.approx(-1 / math.log(slope), rel=1e-12)
    # the scale grows without bound towards the edge from both sides
    edge = 1.3956  # chi1(edge, 0.3) is about 1
    assert mf.depth_scale(edge - 0.01, 0.3) > mf.depth_scale(edge - 0.1, 0.3)
    assert mf.depth_scale(edge + 0.01, 0.3) > mf.depth_scale(edge + 0.1, 0.3)


def test_simulated_correlation_decays_at_the_depth_scale():
    # c_l - c* shrinks by chi_c per layer near the fixed point
    sigma_w, sigma_b = 1.2, 0.3
    c = mf.iterate_correlation(0.2, sigma_w, sigma_b, 60)
    xi = float(mf.depth_scale(sigma_w, sigma_b))
    ratio = (1 - c[-1]) / (1 - c[-11])
    assert ratio == pytest.approx(math.exp(-10 / xi), rel=1e-3)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: mf.length_map(1.0, -1.0), "sigma_w"),
        (lambda: mf.length_map(-1.0, 1.0), "q"),
        (lambda: mf.chi1(1.0, -0.5), "sigma_b"),
        (lambda: mf.correlation_map(1.5, 2.0), "c"),
        (lambda: mf.iterate_correlation(1.5, 2.0, 0.3, 5), "c0"),
        (lambda: mf.length_profile(1.0, 2.0, n_steps=-1), "n_steps"),
        (lambda: mf.length_map(1.0, 2.0, activation="sigmoid"), "activation"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_iterated_correlation_stays_a_correlation_deep_in_the_ordered_phase():
    """Rounding near c = 1 must not push the iterate past 1 (which the map refuses)."""
    path = mf.iterate_correlation(0.5, 0.8, 0.05, n_steps=300)
    assert np.all(np.abs(path) <= 1.0)
    assert path[-1] == pytest.approx(1.0, abs=1e-9)
