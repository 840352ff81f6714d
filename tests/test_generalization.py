"""Tests of whydeep.generalization: every closed form against its own simulation.

Each tolerance is stated next to its assertion, with where it comes from:
a number of standard errors of a Monte Carlo mean, a finite-size correction, or
round-off.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from whydeep import generalization as gen
from whydeep import plotting
from whydeep.data import load_digits


def digits_subset(n_train: int):
    d = load_digits(seed=0)
    return d.x_train[:n_train], d.y_train[:n_train], d.x_test, d.y_test


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    # small matrices: a second BLAS thread only adds waiting on a busy machine
    with threadpool_limits(limits=1):
        yield


# ---------------------------------------------------------------------------
# Double descent
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("p", [30, 70, 130, 300])
def test_finite_ridgeless_risk_matches_simulation(p):
    # the exact expectation: the mean of 400 draws within 4 standard errors
    sim = gen.simulate_isotropic_risk(100, [p], 1.0, 0.25, n_draws=400, seed=1)
    exact = gen.finite_ridgeless_risk(100, [p], 1.0, 0.25)[0]
    se = sim.std(ddof=1) / np.sqrt(sim.size)
    assert abs(sim.mean() - exact) < 4 * se


@pytest.mark.parametrize("gamma", [0.3, 0.8, 1.5, 4.0])
def test_finite_formula_tends_to_the_limit(gamma):
    # the corrections are O(1/n): within 1 % at n = 20,000
    n = 20_000
    finite = gen.finite_ridgeless_risk(n, [int(gamma * n)], 1.0, 0.5)[0]
    assert finite == pytest.approx(gen.ridgeless_risk(gamma, 1.0, 0.5), rel=0.01)


def test_ridgeless_limit_values():
    risk = gen.ridgeless_risk([0.5, 1.0, 2.0], signal=2.0, noise=1.0)
    assert risk[0] == pytest.approx(1.0)  # 0.5 / 0.5
    assert np.isinf(risk[1])
    assert risk[2] == pytest.approx(2.0 * 0.5 + 1.0)


def test_stieltjes_transform_matches_wishart_spectrum():
    # one 600 x 300 Gaussian matrix: its spectrum's average of 1/(s + λ) is within
    # 1 % of the Marchenko–Pastur value (fluctuations are O(1/p))
    rng = np.random.default_rng(2)
    for n, p in ((600, 300), (300, 600)):
        x = rng.standard_normal((n, p))
        s = np.linalg.eigvalsh(x.T @ x / n)
        for lam in (0.1, 1.0):
            measured = np.mean(1 / (s + lam))
            assert measured == pytest.approx(
                gen.mp_stieltjes(-lam, p / n)[()], rel=0.01
            )


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_optimal_ridge_risk_matches_simulation(gamma):
    # n = 200, 200 draws: finite size and sampling together within 5 %
    n = 200
    sim = gen.simulate_isotropic_risk(
        n, [int(gamma * n)], 1.0, 0.5, n_draws=200, ridge="optimal", seed=3
    )
    assert sim.mean() == pytest.approx(
        float(gen.optimal_ridge_risk(gamma, 1.0, 0.5)), rel=0.05
    )


def test_optimal_ridge_beats_other_penalties():
    # the same draws (same seed) for three penalties: λ* is the best of them
    n, p, signal, noise = 100, 150, 1.0, 0.5
    best = noise * (p / n) / signal
    risks = [
        gen.simulate_isotropic_risk(
            n, [p], signal, noise, n_draws=200, ridge=lam, seed=4
        ).mean()
        for lam in (best / 4, best, best * 4)
    ]
    assert risks[1] < risks[0] and risks[1] < risks[2]


@pytest.mark.parametrize("p", [10, 30, 60, 100])
def test_subset_risk_matches_simulation(p):
    # Belkin, Hsu and Xu's expectation: the mean of 1000 draws within 4 s.e.
    beta = 1 / np.arange(1, 101)
    beta /= np.linalg.norm(beta)
    sim = gen.simulate_subset_risk(40, [p], beta, 0.1, n_draws=1000, seed=5)
    exact = gen.subset_risk(40, np.array([p]), beta, 0.1)[0]
    se = sim.std(ddof=1) / np.sqrt(sim.size)
    assert abs(sim.mean() - exact) < 4 * se


def test_subset_risk_is_infinite_next_to_the_threshold():
    beta = np.ones(100) / 10
    risk = gen.subset_risk(40, np.arange(38, 43), beta, 0.1)
    assert np.isfinite(risk[0]) and np.isfinite(risk[-1])
    assert np.all(np.isinf(risk[1:-1]))


def test_random_features_peak_at_interpolation():
    x_tr, y_tr, x_te, y_te = digits_subset(100)
    out = gen.random_features_sweep(
        x_tr, y_tr, x_te, y_te, [25, 100, 1000], n_draws=3, seed=0
    )
    err = np.median(out["test_error"], axis=0)
    assert err[1] > err[0] and err[1] > err[2]
    assert np.all(out["train_mse"][:, 1:] < 1e-8)  # interpolation from N = n on


# ---------------------------------------------------------------------------
# Memorisation
# ---------------------------------------------------------------------------


def test_corrupt_labels_changes_the_stated_fraction():
    labels = np.repeat(np.arange(10), 100)
    noisy = gen.corrupt_labels(labels, 0.5, seed=0)
    # 500 labels redrawn, each keeps its value with probability 1/10: 450 ± 3 s.d.
    assert abs(np.sum(noisy != labels) - 450) < 3 * np.sqrt(500 * 0.09)
    assert np.array_equal(gen.corrupt_labels(labels, 0.0), labels)


def test_nearest_neighbour_follows_the_noisy_formula():
    # the formula is exact in expectation over corruptions: 40 corruptions'
    # mean within 4 standard errors
    x_tr, y_tr, x_te, y_te = digits_subset(300)
    clean = np.mean(gen.nearest_neighbour_predict(x_tr, y_tr, x_te) == y_te)
    for f in (0.3, 0.7):
        acc = np.array(
            [
                np.mean(
                    gen.nearest_neighbour_predict(
                        x_tr, gen.corrupt_labels(y_tr, f, seed=s), x_te
                    )
                    == y_te
                )
                for s in range(40)
            ]
        )
        expected = gen.noisy_interpolator_accuracy(f, clean)
        assert abs(acc.mean() - expected) < 4 * acc.std(ddof=1) / np.sqrt(40)


def test_network_memorises_random_labels():
    x_tr, y_tr, x_te, y_te = digits_subset(150)
    run = gen.memorisation_sweep(
        x_tr, y_tr, x_te, y_te, [0.0, 1.0], n_repeats=1, width=128, max_steps=300
    )
    assert np.all(run.train_accuracy[-1] == 1.0)
    assert np.all(run.steps_to_fit >= 0)
    assert run.test_accuracy[-1, 0, 0] > 0.8  # true labels generalize
    assert run.test_accuracy[-1, 1, 0] < 0.25  # random labels: near chance (0.1)


# ---------------------------------------------------------------------------
# Implicit bias
# ---------------------------------------------------------------------------


def test_gradient_descent_reaches_the_closest_interpolant():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((15, 60)), rng.standard_normal(15)
    for w0 in (np.zeros(60), rng.standard_normal(60)):
        w = gen.gd_least_squares(x, y, w0, n_steps=3000)
        # round-off: 1e-12 on weights of size about 1
        assert np.abs(w - gen.interpolant_from(x, y, w0)).max() < 1e-12
    w_zero = gen.gd_least_squares(x, y, np.zeros(60), n_steps=3000)
    assert np.allclose(w_zero, np.linalg.pinv(x) @ y, atol=1e-12)


def test_effective_rank():
    assert gen.effective_rank(np.eye(5)) == pytest.approx(5.0)
    assert gen.effective_rank(np.outer([1.0, 2, 3], [1.0, -1, 0])) == pytest.approx(1.0)


def test_balanced_factors():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((6, 6))
    for depth in (1, 2, 3):
        ws = gen.balanced_factors(a, depth, seed=1)
        prod = ws[0]
        for w in ws[1:]:
            prod = w @ prod
        assert np.allclose(prod, a, atol=1e-12)
        for lower, upper in itertools.pairwise(ws):
            assert np.allclose(upper.T @ upper, lower @ lower.T, atol=1e-12)


def test_singular_value_dynamics_follow_arora_et_al():
    # gradient descent approaches the flow as the step shrinks: the largest gap
    # between measured and predicted per-step change is below 3 % of the largest
    # change at step 0.1 and halves (ratio 0.35–0.65) when the step halves
    target, mask = gen.completion_problem(12, 2, 60, seed=0)
    for depth in (2, 3):
        gaps = []
        for lr in (0.1, 0.05):
            run = gen.train_factorization(
                target, mask, depth, lr=lr, n_steps=int(100 / lr), record_every=5
            )
            m, p = run.measured_rate[1:], run.predicted_rate[1:]
            gaps.append(np.abs(m - p).max() / np.abs(m).max())
        assert gaps[0] < 0.03
        assert 0.35 < gaps[1] / gaps[0] < 0.65


def test_depth_lowers_rank_and_completion_error():
    target, mask = gen.completion_problem(20, 2, 120, seed=0)
    results = {}
    for depth in (1, 3):
        run = gen.train_factorization(target, mask, depth, lr=0.5, n_steps=3000)
        w = run.end_to_end
        results[depth] = (
            gen.effective_rank(w),
            gen.completion_error(w, target, mask),
        )
        assert np.abs((w - target)[mask]).max() < 0.05  # fits the observations
    assert results[3][0] < 3 < results[1][0]
    assert results[3][1] < 0.5 < results[1][1]


# ---------------------------------------------------------------------------
# Tangent kernel
# ---------------------------------------------------------------------------


def test_ntk_closed_form_matches_a_very_wide_network():
    # points of different norms in 3-D; width 200,000: the fluctuation is about
    # 1/sqrt(200000) = 0.002 relative, so 1 % is a safe bound
    rng = np.random.default_rng(8)
    x = rng.standard_normal((10, 3)) * rng.uniform(0.5, 2.0, size=(10, 1))
    net = gen.two_layer(3, 200_000, seed=1)
    exact = gen.relu_ntk(x, x)
    assert np.linalg.norm(net.ntk(x, x) - exact) / np.linalg.norm(exact) < 0.01


def test_ntk_fluctuations_shrink_like_inverse_square_root_of_width():
    x = gen.circle_points(np.linspace(0, 2 * np.pi, 12, endpoint=False))
    widths = [10, 100, 1000, 10000]
    dev = gen.ntk_deviation(x, widths, n_draws=20, seed=0).mean(axis=0)
    # exponent -1/2 within 0.1 (20 draws per width)
    assert plotting.power_law_fit(widths, dev)[0] == pytest.approx(-0.5, abs=0.1)


def test_linearized_prediction_matches_explicit_linear_model():
    rng = np.random.default_rng(9)
    t = np.sort(rng.uniform(0, 2 * np.pi, 10))
    x, y = gen.circle_points(t), np.sin(3 * t)
    x_test = gen.circle_points(np.linspace(0, 6, 7))
    net = gen.two_layer(2, 50, seed=0)

    def jacobian(z):
        h = z @ net.w.T
        jw = ((h > 0) * net.a)[:, :, None] * z[:, None, :]
        return np.concatenate([jw.reshape(len(z), -1), np.maximum(h, 0)], 1) / np.sqrt(
            50
        )

    j, j_test = jacobian(x), jacobian(x_test)
    theta = np.zeros(j.shape[1])
    lr, steps = 0.5, 40
    for _ in range(steps):
        theta -= lr / len(y) * j.T @ (j @ theta - y)
    train, test = gen.linearized_prediction(
        net.ntk(x, x), net.ntk(x_test, x), y, lr, steps
    )
    # the same linear recursion two ways: round-off
    assert np.abs(j @ theta - train).max() < 1e-10
    assert np.abs(j_test @ theta - test).max() < 1e-10


def test_weight_change_scales_like_one_over_alpha():
    t = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    x, y = gen.circle_points(t), np.cos(2 * t)
    changes = [
        gen.train_two_layer(x, y, 128, alpha=a, lr=2.0, n_steps=200).weight_change
        for a in (10.0, 100.0)
    ]
    # lazy regime: alpha * change is constant to within 10 %
    assert 10 * changes[0] == pytest.approx(100 * changes[1], rel=0.1)


def test_training_lowers_the_loss_and_kernel_change_shrinks_with_width():
    t = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    x, y = gen.circle_points(t), np.cos(2 * t)
    narrow = gen.train_two_layer(x, y, 64, lr=2.0, n_steps=300)
    wide = gen.train_two_layer(x, y, 4096, lr=2.0, n_steps=300)
    assert narrow.loss[-1] < 0.1 * narrow.loss[0]
    assert wide.kernel_change < 0.5 * narrow.kernel_change


# ---------------------------------------------------------------------------
# Sharpness
# ---------------------------------------------------------------------------


def test_sharpness_measured_at_the_end_only():
    x_tr, y_tr, x_te, y_te = digits_subset(50)
    run = gen.train_tracking_sharpness(
        x_tr, y_tr, x_te, y_te, batch_size=10, n_steps=20, sharpness_every=None
    )
    assert list(run.steps) == [20] and run.sharpness.shape == (1,)
    assert 0 <= run.test_error <= 1


def test_full_batch_gradient_descent_sits_at_the_edge_of_stability():
    x_tr, y_tr, x_te, y_te = digits_subset(200)
    lr = 1.5
    run = gen.train_tracking_sharpness(
        x_tr,
        y_tr,
        x_te,
        y_te,
        depth=3,
        width=32,
        lr=lr,
        n_steps=400,
        sharpness_every=50,
    )
    late = run.sharpness[run.steps >= 200]
    # λ_max within 10 % of 2/η once training has settled
    assert np.all(np.abs(late * lr / 2 - 1) < 0.1)
    assert run.loss[-1] < 0.1 * run.loss[0]


# ---------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: gen.ridgeless_risk([0.5, -1.0]), "gamma must be finite positive"),
        (lambda: gen.ridgeless_risk(0.5, noise=-1.0), "noise must be >= 0"),
        (lambda: gen.mp_stieltjes(0.5, 1.0), "z must be negative"),
        (lambda: gen.subset_risk(40, np.array([0]), np.ones(5)), "p must be integers"),
        (
            lambda: gen.subset_risk(1, np.array([2]), np.ones(5)),
            "n must be an integer >= 2",
        ),
        (
            lambda: gen.simulate_subset_risk(10, [3], np.ones(5), ridge="best"),
            "ridge must be a number >= 0 or 'optimal'",
        ),
        (
            lambda: gen.simulate_subset_risk(10, [9], np.ones(5)),
            "ps must not exceed len",
        ),
        (lambda: gen.simulate_isotropic_risk(10, [], 1.0), "ps must be a non-empty"),
        (lambda: gen.corrupt_labels([1, 2], 1.5), "fraction must be <= 1.0"),
        (
            lambda: gen.corrupt_labels([0.5, 1.0], 0.5),
            "labels must be a vector of integers",
        ),
        (
            lambda: gen.noisy_interpolator_accuracy(0.5, 1.5),
            "clean_accuracy must be <= 1.0",
        ),
        (
            lambda: gen.gd_least_squares(np.ones((2, 3)), np.ones(3), np.ones(3)),
            "x, y and w0",
        ),
        (lambda: gen.effective_rank(np.zeros((3, 3))), "matrix must not be zero"),
        (lambda: gen.completion_problem(5, 6, 10), "rank must be an integer <= 5"),
        (lambda: gen.balanced_factors(np.ones((2, 3)), 2), "end_to_end must be square"),
        (
            lambda: gen.train_factorization(np.eye(3), np.ones((3, 3)), 2),
            "mask must be a boolean array",
        ),
        (lambda: gen.relu_ntk(np.ones((2, 2)), np.ones((2, 3))), "same dimension"),
        (lambda: gen.two_layer(2, 0), "width must be an integer >= 1"),
        (
            lambda: gen.train_two_layer(np.ones((3, 2)), np.ones(3), 8, alpha=0.0),
            "alpha must be > 0",
        ),
        (
            lambda: gen.linearized_prediction(
                np.eye(2), np.eye(2), np.ones(2), -1.0, 3
            ),
            "lr must be > 0",
        ),
        (
            lambda: gen.memorisation_sweep(
                np.ones((4, 64)),
                np.zeros(4, int),
                np.ones((2, 64)),
                np.zeros(2, int),
                [],
            ),
            "fractions must be finite numbers \\(at least one\\)",
        ),
        (
            lambda: gen.train_tracking_sharpness(
                np.ones((4, 64)),
                np.zeros(4, int),
                np.ones((2, 64)),
                np.zeros(2, int),
                batch_size=5,
            ),
            "batch_size must be an integer <= 4",
        ),
        (lambda: gen.circle_points([[0.0]]), "angles must be a 1-d array"),
        (
            lambda: gen.completion_error(np.eye(2), np.eye(2), np.ones((2, 2), bool)),
            "mask must leave at least one entry unobserved",
        ),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_plot_draws_checks_shapes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="draws must have shape"):
        gen.plot_draws(ax, [1, 2, 3], np.ones((4, 2)))
    with pytest.raises(ValueError, match="center must be one of 'mean', 'median'"):
        gen.plot_draws(ax, [1, 2], np.ones((4, 2)), center="mode")
    plt.close(fig)
