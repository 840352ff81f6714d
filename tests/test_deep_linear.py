"""Tests of whydeep.deep_linear: tree data, training loops, the exact solution."""

from __future__ import annotations

import numpy as np
import pytest

from whydeep import deep_linear as dl


@pytest.fixture(scope="module")
def tree_data():
    features = dl.sample_tree_features(2000, flip_probability=0.15, seed=3)
    return np.eye(8), features


def test_tree_parents_shape():
    parents = dl.tree_parents(3, 2)
    assert parents.shape == (15,)
    assert parents[0] == -1
    assert list(parents[7:]) == [3, 3, 4, 4, 5, 5, 6, 6]


def test_levels_apart_of_binary_tree():
    apart = dl.tree_levels_apart(3, 2)
    assert (
        apart[0, 0] == 0 and apart[0, 1] == 1 and apart[0, 2] == 2 and apart[0, 7] == 3
    )
    assert np.array_equal(apart, apart.T)


def test_sampled_correlation_follows_tree():
    # 20,000 features: a correlation's sampling error is about 1/sqrt(20000) = 0.007
    features = dl.sample_tree_features(20_000, flip_probability=0.15, seed=1)
    assert set(np.unique(features)) == {-1.0, 1.0}
    corr = features.T @ features / features.shape[0]
    expected = dl.tree_correlation(flip_probability=0.15)
    assert np.abs(corr - expected).max() < 0.04
    by_relation = dl.similarity_by_relation(corr)
    # siblings > cousins > other kingdom, and each close to (1 - 2p)^(2k)
    assert by_relation[1] > by_relation[2] > by_relation[3]
    assert np.allclose(by_relation, [1, 0.49, 0.7**4, 0.7**6], atol=0.02)


def test_no_flips_gives_identical_items_up_to_root_sign():
    features = dl.sample_tree_features(50, flip_probability=0.0, seed=0)
    assert np.all(features == features[:, :1])


def test_block_means_staircase():
    has_bones = [-1, 1, 1, 1, -1, -1, -1, -1]
    assert np.allclose(dl.block_means(has_bones, item=0), [-0.25, 0.5, 0.0, -1.0])
    ternary = dl.block_means(np.arange(9.0), item=7, n_levels=2, n_branches=3)
    assert np.allclose(ternary, [4.0, 7.0, 7.0])


def test_init_scale():
    w1, w2 = dl.init_weights([8, 300, 2000], gamma=2.0, seed=0)
    assert w1.shape == (300, 8) and w2.shape == (2000, 300)
    assert abs(w2.std().item() - 2.0 / np.sqrt(2300)) < 0.01 * 2.0 / np.sqrt(2300)


def test_aligned_start_follows_theorem_exactly(tree_data):
    """The theorem's own start (modes aligned and balanced), small steps: the
    singular values of W_tot stay within 0.5% of s_1 of the sigmoids."""
    labels, features = tree_data
    n_out, n_items = features.shape
    u, s, vt = np.linalg.svd(features, full_matrices=False)
    a0 = 1e-4 * s  # every mode starts at 1e-4 of its final strength
    hidden_dirs = np.linalg.qr(np.random.default_rng(0).normal(size=(12, n_items)))[0]
    w1 = hidden_dirs @ np.diag(np.sqrt(a0)) @ vt
    w2 = u @ np.diag(np.sqrt(a0)) @ hidden_dirs.T
    lr = 0.5
    step = dl.effective_step(lr, n_out, n_items)
    assert step * s[0] < 0.005  # small steps
    run = dl.train_linear_net(
        labels,
        features,
        [w1, w2],
        lr=lr,
        n_epochs=2500,
        record_epochs=range(0, 2501, 10),
    )
    flow = dl.mode_strength(run.record_epochs, s, a0, step)
    assert np.abs(run.singular_values - flow).max() < 0.005 * s[0]


def test_random_start_half_times(tree_data):
    """Small random start, small steps: each mode is half learned within 3% of
    the time the theorem predicts from the effective initial strengths
    (within 1% for the four strongest modes), and all are learned in the end."""
    labels, features = tree_data
    n_out, n_items = features.shape
    lr, gamma = 1.0, 1e-2
    w = dl.init_weights([n_items, 20, n_out], gamma=gamma, seed=0)
    grid = dl.train_grid(
        labels,
        features,
        [gamma],
        [lr],
        n_hidden=20,
        n_epochs=2600,
        record_every=5,
        seed=0,
    )
    s = np.linalg.svd(features, compute_uv=False)
    step = dl.effective_step(lr, n_out, n_items)
    assert step * s[0] < 0.01  # small steps
    a0 = dl.initial_mode_strengths(features, *w)
    assert a0.max() < 1e-5 * s[-1]  # a tiny start
    simulated = grid.singular_values[0, 0]
    t_sim = dl.learning_epochs(grid.record_epochs, simulated, s)
    t_flow = np.sort([dl.half_time(sk, ak, step) for sk, ak in zip(s, a0, strict=True)])
    assert np.allclose(t_sim[:4], t_flow[:4], rtol=0.01)
    assert np.allclose(t_sim, t_flow, rtol=0.03)
    assert simulated[-1] == pytest.approx(s, rel=1e-2)


def test_discrete_rate_corrects_large_steps(tree_data):
    labels, features = tree_data
    n_out, n_items = features.shape
    lr = 20.0  # effective step x s_1 is about 0.3
    w = dl.init_weights([n_items, 20, n_out], gamma=1e-6, seed=0)
    grid = dl.train_grid(
        labels, features, [1e-6], [lr], n_hidden=20, n_epochs=150, seed=0
    )
    s = np.linalg.svd(features, compute_uv=False)
    step = dl.effective_step(lr, n_out, n_items)
    a0 = dl.initial_mode_strengths(features, *w)
    t_sim = dl.learning_epochs(grid.record_epochs, grid.singular_values[0, 0], s)[0]
    t_flow = dl.half_time(s[0], a0[0], step)
    t_steps = dl.half_time(s[0], a0[0], step, discrete=True)
    assert abs(t_steps - t_sim) < 1.0 < abs(t_flow - t_sim)


def test_balance_is_conserved_up_to_the_step(tree_data):
    """W1 W1^T - W2^T W2 is constant under the gradient flow: gradient descent
    drifts from it by an amount proportional to the step, tiny next to the
    growth of W1 W1^T over the same training time."""
    labels, features = tree_data
    drifts = []
    for lr, n_epochs in [(4.0, 200), (2.0, 400)]:  # the same time lr * n_epochs
        w = dl.init_weights([8, 12, features.shape[0]], gamma=0.3, seed=0)
        run = dl.train_linear_net(
            labels, features, w, lr=lr, n_epochs=n_epochs, record_epochs=[n_epochs]
        )
        (w1, w2), (v1, v2) = w, run.weights
        before, after = (w1 @ w1.T - w2.T @ w2), (v1 @ v1.T - v2.T @ v2)
        drifts.append((after - before).abs().max().item())
        grown = (v1 @ v1.T).abs().max().item()
        assert drifts[-1] < 1e-3 * grown
    assert drifts[1] / drifts[0] == pytest.approx(0.5, abs=0.05)


def test_largest_stable_learning_rate(tree_data):
    """Gradient descent converges just below eta = N P / (2 s_1) and not just above."""
    labels, features = tree_data
    s_1 = np.linalg.norm(features, 2)
    lr_max = features.size / (2 * s_1)
    grid = dl.train_grid(
        labels,
        features,
        [1e-3],
        [0.95 * lr_max, 1.05 * lr_max],
        n_hidden=8,
        n_epochs=200,
    )
    assert grid.loss[0, 0, -1] < 1e-12
    assert grid.loss[0, 1, -1] > 1e-3


def test_illusory_correlation_follows_group_means(tree_data):
    """Halfway between the stages, the prediction that the shark has bones is the
    mean of 'has bones' over the shark's group at the level learned so far."""
    labels, features = tree_data
    has_bones = np.array([-1, 1, 1, 1, -1, -1, -1, -1], dtype=float)
    with_bones = np.vstack([features, has_bones])
    n_out = with_bones.shape[0]
    grid = dl.train_grid(
        labels,
        with_bones,
        [1e-12],
        [100.0],
        n_hidden=12,
        n_epochs=300,
        watch=(n_out - 1, 0),
    )
    s = np.linalg.svd(with_bones, compute_uv=False)
    t_half = dl.learning_epochs(grid.record_epochs, grid.singular_values[0, 0], s)
    stage_ends = t_half[[0, 1, 2, 4]]  # all items, kingdom, class, individuals
    between = [*np.round((stage_ends[:-1] + stage_ends[1:]) / 2).astype(int), 300]
    means = dl.block_means(has_bones, item=0)
    assert np.allclose(grid.watched[0, 0, between], means, atol=0.05)


def test_grid_survives_divergence(tree_data):
    labels, features = tree_data
    grid = dl.train_grid(labels, features, [1e-3], [5000.0], n_hidden=8, n_epochs=40)
    assert np.isinf(grid.loss[0, 0, -1])
    assert np.isnan(grid.singular_values[0, 0, -1]).all()


def test_grid_matches_full_network(tree_data):
    labels, features = tree_data
    features = np.vstack([features, [-1, 1, 1, 1, -1, -1, -1, -1]])
    n_out = features.shape[0]
    w = dl.init_weights([8, 16, n_out], gamma=0.5, seed=4)
    run = dl.train_linear_net(
        labels,
        features,
        w,
        lr=30.0,
        n_epochs=60,
        record_epochs=range(0, 61, 4),
        watch=(n_out - 1, 0),
    )
    grid = dl.train_grid(
        labels,
        features,
        [0.5, 1e-3],
        [30.0, 5.0],
        n_hidden=16,
        n_epochs=60,
        record_every=4,
        watch=(n_out - 1, 0),
        seed=4,
    )
    assert np.allclose(grid.loss[0, 0], run.loss, rtol=1e-9, atol=1e-12)
    assert np.allclose(grid.watched[0, 0], run.watched, atol=1e-10)
    assert np.allclose(grid.singular_values[0, 0], run.singular_values, atol=1e-6)
    assert np.allclose(grid.rsm[0, 0], run.rsm, atol=1e-10)


def test_rsm_is_square_root_of_end_to_end_gram(tree_data):
    labels, features = tree_data
    w = dl.init_weights([8, 20, features.shape[0]], gamma=1e-6, seed=0)
    run = dl.train_linear_net(
        labels, features, w, lr=20.0, n_epochs=150, record_epochs=[150]
    )
    eigval, eigvec = np.linalg.eigh(run.w_tot.T @ run.w_tot)
    root = eigvec @ np.diag(np.sqrt(eigval.clip(0))) @ eigvec.T
    assert np.abs(run.rsm[-1] - root).max() < 1e-8 * np.abs(root).max()


def test_regression_three_ways_agree():
    """Analytic least squares, a network without hidden layer and a deep
    network's W_tot agree to 1e-2, for one-hot and for generic inputs."""
    rng = np.random.default_rng(0)
    cases = [(np.eye(8), dl.sample_tree_features(500, seed=2))]
    x = rng.normal(size=(5, 40))
    cases.append((x, rng.normal(size=(3, 5)) @ x + 0.01 * rng.normal(size=(3, 40))))
    for X, Y in cases:
        n_in, n_out = X.shape[0], Y.shape[0]
        analytic = dl.least_squares(X, Y)
        curvature = np.linalg.eigvalsh(X @ X.T).max()
        # stable steps: below Y.size / curvature for the shallow network, and
        # below Y.size / (2 s_1 curvature) for the deep one (s_1 of the answer)
        lr_shallow = 0.4 * Y.size / curvature
        lr_deep = 0.2 * Y.size / (2 * np.linalg.norm(analytic, 2) * curvature)
        shallow = dl.train_linear_net(
            X,
            Y,
            dl.init_weights([n_in, n_out], 1e-3),
            lr=lr_shallow,
            n_epochs=600,
            record_epochs=[600],
        )
        deep = dl.train_linear_net(
            X,
            Y,
            dl.init_weights([n_in, 16, n_out], 1e-3),
            lr=lr_deep,
            n_epochs=3000,
            record_epochs=[3000],
        )
        assert np.abs(shallow.w_tot - analytic).max() < 1e-2
        assert np.abs(deep.w_tot - analytic).max() < 1e-2
        assert np.abs(deep.w_tot - shallow.w_tot).max() < 1e-2


def test_least_squares_is_y_for_one_hot():
    Y = dl.sample_tree_features(30, seed=0)
    assert np.allclose(dl.least_squares(np.eye(8), Y), Y)


def test_mode_strength_limits():
    t = np.array([0.0, 1e6])
    a = dl.mode_strength(t, 5.0, 1e-4, 0.01)
    assert a[0] == pytest.approx(1e-4) and a[1] == pytest.approx(5.0)
    assert dl.mode_strength(
        dl.half_time(5.0, 1e-4, 0.01), 5.0, 1e-4, 0.01
    ) == pytest.approx(2.5)
    # several modes at once: one column each, as each mode alone
    s, a0 = np.array([5.0, 2.0]), np.array([1e-4, 1e-3])
    both = dl.mode_strength(t, s, a0, 0.01, discrete=True)
    assert both.shape == (2, 2)
    for k in range(2):
        alone = dl.mode_strength(t, s[k], a0[k], 0.01, discrete=True)
        np.testing.assert_array_equal(both[:, k], alone)
    halves = dl.mode_strength(dl.half_time(s, a0, 0.01), s, a0, 0.01)
    np.testing.assert_allclose(np.diagonal(halves), s / 2)


def test_mode_level():
    assert [dl.mode_level(k) for k in range(8)] == [0, 1, 2, 2, 3, 3, 3, 3]


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (
            lambda: dl.sample_tree_features(10, flip_probability=-0.1),
            "flip_probability",
        ),
        (lambda: dl.sample_tree_features(10, flip_probability=1.5), "flip_probability"),
        (lambda: dl.tree_correlation(flip_probability=2.0), "flip_probability"),
        (lambda: dl.sample_tree_features(10, n_levels=0), "n_levels"),
        (lambda: dl.sample_tree_features(10, n_branches=0), "n_branches"),
        (lambda: dl.tree_parents(n_levels=-1), "n_levels"),
        (lambda: dl.sample_tree_features(0), "n_features"),
        (lambda: dl.init_weights([8, 30, 10], gamma=-1.0), "gamma"),
        (
            lambda: dl.train_grid(
                np.eye(8), np.ones((3, 8)), [-1.0], [1.0], n_hidden=4, n_epochs=2
            ),
            "gammas",
        ),
        (
            lambda: dl.train_linear_net(
                np.eye(8),
                np.ones((3, 8)),
                dl.init_weights([8, 4, 3], 0.1),
                lr=0.0,
                n_epochs=2,
            ),
            "lr",
        ),
        (
            lambda: dl.train_linear_net(
                np.eye(8),
                np.ones((3, 7)),
                dl.init_weights([8, 4, 3], 0.1),
                lr=1.0,
                n_epochs=2,
            ),
            "X and Y",
        ),
        (
            lambda: dl.train_linear_net(
                np.eye(8),
                np.ones((3, 8)),
                dl.init_weights([7, 4, 3], 0.1),
                lr=1.0,
                n_epochs=2,
            ),
            "weights",
        ),
        (lambda: dl.least_squares(np.ones((3, 8)), np.ones((2, 8))), "X @ X.T"),
        (lambda: dl.block_means([1, 2, 3], item=0), "values"),
        (lambda: dl.mode_strength([0, 1], [1.0, 2.0], [0.1], 0.1), "singular_value"),
        (lambda: dl.half_time(1.0, 0.0, 0.1), "initial_strength"),
        (lambda: dl.learning_epochs([0, 1], [[0], [1]], [1], 0.0), "fraction"),
        (lambda: dl.plot_rsm(None, np.ones((3, 3))), "rsm"),
    ],
)
def test_bad_arguments_raise(call, name):
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        call()


# --------------------------------------------------------------------------
# Deeper networks
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
def test_trainer_gradients_match_autograd_at_any_depth(tree_data, n_layers):
    """One step of the hand-written backward pass equals autograd's, for any
    number of layers."""
    import torch

    labels, features = tree_data
    features = features[:50]
    sizes = [8] + [6] * (n_layers - 1) + [50]
    w = dl.init_weights(sizes, gamma=1.5, seed=1)
    lr = 0.7
    run = dl.train_linear_net(labels, features, w, lr=lr, n_epochs=1)
    params = [t.clone().requires_grad_(True) for t in w]
    x = torch.as_tensor(labels, dtype=torch.float64)
    y = torch.as_tensor(features, dtype=torch.float64)
    loss = (y - dl.end_to_end(params) @ x).square().mean()
    loss.backward()
    for p, after in zip(params, run.weights, strict=True):
        torch.testing.assert_close(
            after, p.detach() - lr * p.grad, rtol=1e-12, atol=1e-14
        )
    assert run.loss[0] == pytest.approx(loss.item(), rel=1e-12)


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4, 6])
def test_balanced_start_follows_the_recursion_exactly(tree_data, n_layers):
    labels, features = tree_data
    n_out, n_items = features.shape
    s = np.linalg.svd(features, compute_uv=False)
    a0 = s[0] / 50
    w = dl.balanced_weights(features, 10, n_layers, a0, seed=2)
    np.testing.assert_allclose(
        np.linalg.svd(dl.end_to_end(w).numpy(), compute_uv=False), a0, rtol=1e-12
    )
    step = 0.3 * dl.stable_step(s[0], n_layers)
    lr = step * n_out * n_items / 2
    epochs = np.arange(0, 121, 10)
    run = dl.train_linear_net(
        labels, features, w, lr=lr, n_epochs=120, record_epochs=epochs
    )
    recursion = dl.balanced_mode_strengths(
        s, a0, step=step, n_layers=n_layers, epochs=epochs, discrete=True
    )
    np.testing.assert_allclose(
        run.singular_values, recursion, rtol=1e-9, atol=1e-9 * s[0]
    )
    # every layer carries the modes equally: the start stays balanced
    if n_layers > 1:
        grams = [wk @ wk.T for wk in run.weights[:-1]]
        norms = [np.linalg.norm(g.numpy(), 2) for g in grams]
        np.testing.assert_allclose(norms, norms[0], rtol=1e-9)


@pytest.mark.parametrize("n_layers", [2, 3, 4])
def test_balanced_flow_matches_the_network_within_two_and_a_half_percent(
    tree_data, n_layers
):
    """Steps at a twentieth of the stable limit: the integrated flow of
    da/dt = step N a^(2-2/N) (s - a) stays within 2.5% of s_1 of the network."""
    labels, features = tree_data
    n_out, n_items = features.shape
    s = np.linalg.svd(features, compute_uv=False)
    step = 0.05 * dl.stable_step(s[0], n_layers)
    a0 = s[0] / 100
    w = dl.balanced_weights(features, 10, n_layers, a0, seed=0)
    epochs = np.arange(0, 1201, 10)
    run = dl.train_linear_net(
        labels,
        features,
        w,
        lr=step * n_out * n_items / 2,
        n_epochs=1200,
        record_epochs=epochs,
    )
    flow = dl.balanced_mode_strengths(
        s, a0, step=step, n_layers=n_layers, epochs=epochs
    )
    assert np.abs(run.singular_values - flow).max() < 0.025 * s[0]
    assert run.singular_values[-1] == pytest.approx(s, rel=1e-3)  # all learned


def test_training_in_the_span_of_the_targets_is_the_full_network(tree_data):
    labels, features = tree_data
    n_items = features.shape[1]
    _, s, vt = np.linalg.svd(features, full_matrices=False)
    y_span = np.diag(s) @ vt
    step = 0.2 * dl.stable_step(s[0], 3)
    runs = []
    for y in (features, y_span):
        w = dl.balanced_weights(y, 10, 3, s[0] / 30, seed=1)
        runs.append(
            dl.train_linear_net(
                labels, y, w, lr=step * y.shape[0] * n_items / 2, n_epochs=80
            )
        )
    np.testing.assert_allclose(
        runs[0].singular_values, runs[1].singular_values, rtol=1e-9, atol=1e-9 * s[0]
    )


def test_logistic_case_of_the_deep_flow():
    """N = 2 is the sigmoid of the one-hidden-layer theorem."""
    s, a0, step = np.array([3.0, 1.0]), 1e-3, 0.01
    epochs = np.linspace(0, 800, 41)
    deep = dl.balanced_mode_strengths(s, a0, step=step, n_layers=2, epochs=epochs)
    sigmoid = np.stack([dl.mode_strength(epochs, sk, a0, step) for sk in s], axis=-1)
    np.testing.assert_allclose(deep, sigmoid, rtol=1e-7, atol=1e-9)


def test_small_random_start_plateaus_lengthen_and_sharpen_with_depth(tree_data):
    labels, features = tree_data
    n_out, n_items = features.shape
    s = np.linalg.svd(features, compute_uv=False)
    half, rise = [], []
    for n in (2, 3, 4):
        lr = 0.5 * dl.stable_step(s[0], n) * n_out * n_items / 2
        w = dl.init_weights([n_items] + [12] * (n - 1) + [n_out], gamma=1.0, seed=0)
        epochs = np.arange(0, 401)
        run = dl.train_linear_net(labels, features, w, lr=lr, n_epochs=400)
        sv = run.singular_values[:, :1]
        t10, t50, t90 = (
            dl.learning_epochs(epochs, sv, s[:1], f)[0] for f in (0.1, 0.5, 0.9)
        )
        half.append(t50)
        rise.append((t90 - t10) / t50)
    assert half[0] < half[1] < half[2] and half[2] > 4 * half[0]
    assert rise[0] > rise[1] > rise[2]


def test_learning_time_levels_off_with_depth():
    s = np.array([150.0, 120.0, 100.0, 70.0])
    epochs = np.arange(0, 400)
    times = []
    for n in (2, 8, 32, 128, 512):
        a = dl.balanced_mode_strengths(
            s,
            s[0] / 10,
            step=0.5 * dl.stable_step(s[0], n),
            n_layers=n,
            epochs=epochs,
            discrete=True,
        )
        times.append(dl.learning_epochs(epochs, a, s, 0.9).max())
    assert times == sorted(times)  # grows ...
    assert times[-1] - times[-2] < 0.05 * times[-2]  # ... but levels off
    assert times[-1] < 10 * times[0]


def test_deep_balanced_arguments_raise():
    y = np.eye(3)
    with pytest.raises(ValueError, match="n_hidden"):
        dl.balanced_weights(y, 2, 3, 0.1)
    with pytest.raises(ValueError, match="initial_strength"):
        dl.balanced_weights(y, 3, 3, 0.0)
    with pytest.raises(ValueError, match="n_layers"):
        dl.balanced_mode_strengths([1.0], 0.1, step=0.1, n_layers=0, epochs=[0, 1])
    with pytest.raises(ValueError, match="whole"):
        dl.balanced_mode_strengths(
            [1.0], 0.1, step=0.1, n_layers=2, epochs=[0, 0.5], discrete=True
        )
    import matplotlib.pyplot as plt

    fig = plt.figure()
    try:
        with pytest.raises(ValueError, match="panels"):
            dl.plot_data(fig, np.ones((4, 8)), panels=("nothing",))
    finally:
        plt.close(fig)  # leave no figure open for other tests
