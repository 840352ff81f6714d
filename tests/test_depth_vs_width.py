"""Tests for whydeep.depth_vs_width and the Levenberg–Marquardt trainer it uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from whydeep import depth_vs_width as dw
from whydeep import meanfield as mf
from whydeep.nets import BatchedMLP
from whydeep.plotting import power_law_fit
from whydeep.training import fit_levenberg_marquardt


def test_bias_moves_the_edge_of_chaos_to_larger_gains():
    # bisection in the chapter's exercise finds the edge at 1.3956 for sigma_b = 0.3
    assert float(mf.chi1(1.0, 0.3)) < 1
    assert float(mf.chi1(1.3956, 0.3)) == pytest.approx(1.0, abs=1e-3)
    assert float(mf.chi1(1.35, 0.3)) < 1 < float(mf.chi1(1.45, 0.3))


def test_a_copy_of_the_teacher_has_exactly_zero_error():
    teacher = dw.make_teacher(2.0, seed=0)
    x, y = dw.teacher_data(teacher, 500, seed=1)
    copy = dw.make_teacher(2.0, seed=0)
    assert float(dw.relative_error(copy(x).detach(), y)) == 0.0
    with torch.no_grad():
        copy[2].weight[0, 0] += 1e-6
    assert 0 < float(dw.relative_error(copy(x).detach(), y)) < 1e-11


def test_wide_network_matches_mean_field():
    q_sim, stretch = dw.simulate_wide_network(2.0, width=1000, n_hidden=20, n_inputs=8)
    assert q_sim[-5:].mean() == pytest.approx(float(mf.fixed_point(2.0)), rel=0.03)
    assert stretch[-10:].mean() == pytest.approx(float(mf.chi1(2.0)), rel=0.03)


def test_circle_length_follows_mean_field():
    _, lengths = dw.circle_through_network(2.0, width=300, depth=10, n_points=1000)
    predicted = dw.predicted_length_growth(2.0, 2.0, 9)
    assert lengths[-1] / lengths[0] == pytest.approx(predicted[-1], rel=0.2)


def _small_problem(n_samples=200, seed=0):
    teacher = dw.make_teacher(2.0, seed=seed)
    return dw.teacher_data(teacher, n_samples, seed=seed + 1)


@pytest.mark.parametrize("direct_max", [300, 10])
def test_batched_training_equals_training_each_member_alone(direct_max):
    x, y = _small_problem()
    widths = [3, 6, 6]
    batched = BatchedMLP(
        5,
        widths,
        2,
        sigma=1.0,
        dtype=torch.float64,
        seed=0,
    )
    alone = []
    for k, width in enumerate(widths):
        single = BatchedMLP(5, [width], 2, dtype=torch.float64)
        with torch.no_grad():
            for w_single, w_batched in zip(
                single.weights, batched.weights, strict=True
            ):
                w_single.copy_(
                    w_batched[k : k + 1, : w_single.shape[1], : w_single.shape[2]]
                )
        alone.append(single)
    # The arithmetic is the same, but a batched product may round differently
    # from a single one; over many accept/reject decisions such 1e-16 differences
    # can grow, so compare the first steps tightly.
    kwargs = dict(max_steps=10, direct_max=direct_max)
    history = fit_levenberg_marquardt(batched, x, y, **kwargs)
    for k, single in enumerate(alone):
        single_history = fit_levenberg_marquardt(single, x, y, **kwargs)
        np.testing.assert_allclose(
            history.loss[:, k][: len(single_history.loss)],
            single_history.loss[:, 0],
            rtol=1e-8,
        )
        member, reference = batched.member(k), single.member(0)
        for a, b in zip(member.parameters(), reference.parameters(), strict=True):
            np.testing.assert_allclose(a.detach(), b.detach(), rtol=1e-7, atol=1e-10)


def test_final_improvement_reads_each_members_own_last_steps():
    from whydeep.training import History

    loss = np.array([[8.0, 4.0], [4.0, 2.0], [2.0, 1.0], [2.0, 1.0]])
    history = History(loss, np.arange(4), True, {"steps": np.array([3, 2])})
    # member 0 stopped after step 3 (4 -> 2 over its last two steps), member 1
    # after step 2 (4 -> 1); the repeated rows after a stop are not counted
    np.testing.assert_allclose(dw.final_improvement(history, 2), [0.5, 0.75])
    np.testing.assert_allclose(dw.final_improvement(history, 1), [0.0, 0.5])


def test_growth_depth_scale_matches_the_correlation_map():
    # ordered phase with bias: 1 - c decays like exp(-l / xi), xi = -1/ln chi1,
    # which is also meanfield.depth_scale there
    xi = float(dw.growth_depth_scale(0.8, 0.3))
    assert xi == pytest.approx(float(mf.depth_scale(0.8, 0.3)), rel=1e-12)
    c = mf.iterate_correlation(1 - 1e-4, 0.8, 0.3, 12)
    rate = np.polyfit(np.arange(13), np.log(1 - c), 1)[0]
    assert rate == pytest.approx(-1 / xi, rel=1e-3)
    # chaotic phase without bias: 1 - c grows like exp(l / xi), xi = 1/ln chi1
    xi = float(dw.growth_depth_scale(2.0))
    c = mf.iterate_correlation(1 - 1e-10, 2.0, 0.0, 6)
    rate = np.polyfit(np.arange(7), np.log(1 - c), 1)[0]
    assert rate == pytest.approx(1 / xi, rel=1e-3)


def test_teacher_stretch_of_a_linear_layer_is_exact():
    # a depth-2 teacher: the first layer's image of a circle of radius r in a
    # plane P is an ellipse, whose length we know from the singular values
    teacher = dw.make_teacher(1.0, depth=2, seed=3)
    lengths = dw.teacher_stretch(teacher, n_circles=3, radius=2.0, seed=1)
    assert lengths.shape == (3, 2)
    assert np.all(lengths > 0)
    # the output is tanh-squashed, so its length is below the linear bound
    w2 = teacher[2].weight.detach().numpy()
    bound = np.linalg.norm(w2) * lengths[:, 0]
    assert np.all(lengths[:, 1] <= bound + 1e-9)


def test_small_teachers_stretch_by_a_factor_of_order_one():
    # width-5, depth-5 teachers fluctuate and stretch somewhat less than mean
    # field; averaged over teachers and circles the sigma = 2 stretch is within
    # a factor 1.5 of it, and clearly above the quasi-linear teacher's
    radius, mean = 5**0.5, {}
    for sigma in (0.4, 2.0):
        ratios = []
        for seed in range(6):
            teacher = dw.make_teacher(sigma, seed=seed)
            ell = dw.teacher_stretch(teacher, n_circles=10, radius=radius, seed=seed)
            ratios.append(ell[:, 3] / ell[:, 0])
        mean[sigma] = np.mean(ratios)
    predicted = dw.predicted_length_growth(2.0, 2.0**2 * radius**2 / 5, 4)[-1]
    assert predicted / 1.5 < mean[2.0] < predicted * 1.5
    assert mean[0.4] < 0.5 * mean[2.0]


#: The chapter's training rule: L-BFGS, then Levenberg–Marquardt until the
#: stopping test (the second stage alone in LM_RULE).
LM_RULE = dict(tol=1e-2, patience=20, max_steps=1000)
RULE = dict(lbfgs_steps=1000, **LM_RULE)


def test_every_student_that_stopped_by_the_rule_had_stopped_improving():
    x, y = _small_problem(400)
    x_test, y_test = _small_problem(200, seed=5)
    fit = dw.train_students(
        x,
        y,
        x_test,
        y_test,
        [3, 8, 8],
        starts=[1, 2, 3],
        min_examples_per_param=1,
        lbfgs_steps=20,
        **LM_RULE,
    )
    stopped = fit.history.extra["converged"]
    assert stopped.all()
    assert np.all(fit.history.extra["steps"] < LM_RULE["max_steps"])
    rate = dw.final_improvement(fit.history, LM_RULE["patience"])
    assert np.all(rate <= LM_RULE["tol"])


def test_a_start_can_be_rerun_alone():
    x, y = _small_problem(300)
    together = dw.train_students(x, y, x, y, [4, 4], starts=[7, 8], max_steps=5)
    alone = dw.train_students(x, y, x, y, [4], starts=[8], max_steps=5)
    np.testing.assert_allclose(
        alone.history.loss[:, 0], together.history.loss[:, 1], rtol=1e-8
    )


def test_deep_students_from_data_alone_find_the_teacher():
    # the chapter's deep experiment: 12 random starts of the teacher's shape,
    # trained on the training set only by the chapter's rule; the best by
    # training error reaches the teacher (relative test error <= 1e-6)
    teacher = dw.make_teacher(2.0, seed=0)
    x, y = dw.teacher_data(teacher, 4000, seed=1)
    x_test, y_test = dw.teacher_data(teacher, 1000, seed=2)
    fit = dw.train_students(
        x, y, x_test, y_test, [5] * 12, depth=5, starts=range(12), **RULE
    )
    best = int(np.argmin(fit.train_error))
    assert fit.test_error[best] <= 1e-6
    # every start stopped by the rule, none by the cap
    assert fit.history.extra["converged"].all()
    assert fit.history.extra["steps"].max() < RULE["max_steps"]


def test_quasi_linear_teacher_is_easy_for_a_shallow_student():
    teacher = dw.make_teacher(0.4, seed=0)
    x, y = dw.teacher_data(teacher, 300, seed=1)
    x_test, y_test = dw.teacher_data(teacher, 300, seed=2)
    fit = dw.train_students(x, y, x_test, y_test, [10])
    assert fit.test_error[0] <= 1e-4


def test_power_law_round_trip():
    widths = np.array([5.0, 50.0, 500.0])
    exponent, prefactor = power_law_fit(widths, 0.3 * widths**-0.5)
    assert exponent == pytest.approx(-0.5)
    assert dw.width_for_error(0.003, exponent, prefactor) == pytest.approx(
        1e4, rel=1e-9
    )


def test_relative_error_of_a_constant_prediction_is_about_one():
    _, y = _small_problem()
    assert float(dw.relative_error(torch.full_like(y, y.mean()), y)) == pytest.approx(
        (len(y) - 1) / len(y), rel=1e-12
    )


@pytest.mark.parametrize(
    ("call", "word"),
    [
        (lambda: dw.make_teacher(0.0), "sigma"),
        (lambda: dw.make_teacher(1.0, seed=-1), "seed"),
        (lambda: dw.teacher_data(dw.make_teacher(1.0), 0), "n_samples"),
        (lambda: dw.teacher_data(torch.nn.Linear(5, 1), 10), "teacher"),
        (lambda: dw.relative_error(torch.zeros(3, 1), torch.zeros(4, 1)), "target"),
        (lambda: dw.simulate_wide_network(2.0, width=0), "width"),
        (lambda: dw.simulate_correlation(2.0, 1.0, 0.0), "c0"),
        (lambda: dw.circle_through_network(1.0, depth=1), "depth"),
        (lambda: power_law_fit([1, 2], [1, -1]), "positive"),
        (lambda: dw.width_for_error(1e-6, 0.5, 1.0), "exponent"),
        (lambda: dw.sigma_sweep([], *_small_problem()), "sigmas"),
        (lambda: dw.final_improvement(None, 0), "window"),
        (lambda: dw.teacher_stretch(torch.nn.Linear(5, 1)), "teacher"),
        (lambda: dw.lbfgs_phase(torch.nn.Linear(5, 1), None, None, 1), "model"),
        (
            lambda: dw.train_students(
                *_small_problem(), *_small_problem(), [3], starts=[1, 2]
            ),
            "starts",
        ),
        (
            lambda: dw.train_students(*_small_problem(), *_small_problem(), [100]),
            "x_train",
        ),
        (
            lambda: dw.train_students(*_small_problem(), *_small_problem(), [0]),
            "widths",
        ),
        (
            lambda: fit_levenberg_marquardt(torch.nn.Linear(5, 1), *_small_problem()),
            "model",
        ),
        (
            lambda: fit_levenberg_marquardt(
                BatchedMLP(5, [3], 2), *_small_problem(), cg_steps=0
            ),
            "cg_steps",
        ),
    ],
)
def test_bad_arguments_raise_value_error(call, word):
    with pytest.raises(ValueError, match=word):
        call()


@pytest.mark.parametrize(("sigma_w", "sigma_b"), [(0.8, 0.3), (2.0, 0.3)])
def test_simulated_correlation_follows_the_correlation_map(sigma_w, sigma_b):
    # The page overlays wide random networks on the mean-field iteration. One
    # chaotic network fluctuates by several hundredths at width 2000, so the
    # claim is tested on the mean of six networks, within 0.05.
    simulated = np.mean(
        [
            dw.simulate_correlation(
                0.5, sigma_w, sigma_b, width=2000, n_steps=10, seed=k
            )
            for k in range(6)
        ],
        axis=0,
    )
    theory = mf.iterate_correlation(0.5, sigma_w, sigma_b, 10)
    np.testing.assert_allclose(simulated, theory, atol=0.05)
