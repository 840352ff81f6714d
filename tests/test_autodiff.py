"""Tests of whydeep.autodiff: the cost formulas, the matrix-chain solver, the
Hessian-vector products, the scalar engine and the hand-written NumPy gradients."""

import itertools
import math

import numpy as np
import pytest
import torch

from whydeep import autodiff as ad
from whydeep import nets, set_seed
from whydeep.data import load_digits

# PyTorch compiles its forward-mode rules with torch.jit on first use, which warns
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


def naive_matmul_count(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """Triple loop that counts every scalar multiply-add it performs."""
    out = np.zeros((a.shape[0], b.shape[1]))
    count = 0
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            for k in range(a.shape[1]):
                out[i, j] += a[i, k] * b[k, j]
                count += 1
    return out, count


def all_bracketings(lo: int, hi: int):
    """Every bracketing of the factors lo..hi (a Catalan number of them)."""
    if lo == hi:
        yield lo
        return
    for k in range(lo, hi):
        for left in all_bracketings(k + 1, hi):
            for right in all_bracketings(lo, k):
                yield (left, right)


def random_chain(rng, n_factors, max_dim=5):
    dims = [int(d) for d in rng.integers(1, max_dim + 1, size=n_factors + 1)]
    jacobians = [rng.normal(size=(b, a)) for a, b in itertools.pairwise(dims)]
    return dims, jacobians


@pytest.mark.parametrize("seed", range(6))
def test_mode_formulas_equal_brute_force_counts(seed):
    rng = np.random.default_rng(seed)
    dims, jacobians = random_chain(rng, n_factors=int(rng.integers(1, 6)))
    # forward J_L (... (J_2 J_1)) and reverse ((J_L J_{L-1}) ...) J_1, scalar by scalar
    product, fwd_count = jacobians[0], 0
    for jac in jacobians[1:]:
        product, c = naive_matmul_count(jac, product)
        fwd_count += c
    expected = product
    product, rev_count = jacobians[-1], 0
    for jac in reversed(jacobians[:-1]):
        product, c = naive_matmul_count(product, jac)
        rev_count += c
    np.testing.assert_allclose(product, expected, rtol=1e-10, atol=1e-12)
    assert fwd_count == ad.forward_cost(dims)
    assert rev_count == ad.reverse_cost(dims)
    n = len(jacobians)
    for tree, count in [
        (ad.forward_bracketing(n), fwd_count),
        (ad.reverse_bracketing(n), rev_count),
    ]:
        result, counted = ad.multiply_chain(jacobians, tree)
        assert counted == count == ad.bracketing_cost(dims, tree)
        np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n_factors", range(1, 8))
def test_dynamic_programme_is_optimal_against_exhaustive_search(n_factors):
    rng = np.random.default_rng(100 + n_factors)
    for _ in range(5):
        dims = [int(d) for d in rng.integers(1, 30, size=n_factors + 1)]
        cost, tree = ad.optimal_bracketing(dims)
        costs = [ad.bracketing_cost(dims, t) for t in all_bracketings(1, n_factors)]
        assert cost == min(costs) == ad.bracketing_cost(dims, tree)
        assert cost <= min(ad.forward_cost(dims), ad.reverse_cost(dims))


@pytest.mark.parametrize("n_factors", range(1, 8))
def test_number_of_bracketings_is_catalan(n_factors):
    expected = math.comb(2 * n_factors - 2, n_factors - 1) // n_factors
    assert len(list(all_bracketings(1, n_factors))) == expected


def test_optimal_orders_of_the_three_shapes():
    """Reverse mode for a scalar output, forward mode for a scalar input, and for
    an hourglass the two halves collapsed onto the narrow middle first."""
    cases = [
        ([1000, 100, 100, 100, 1], "((J4 J3) J2) J1"),
        ([1, 100, 100, 100, 1000], "J4 (J3 (J2 J1))"),
        ([1000, 100, 10, 100, 1000], "(J4 J3) (J2 J1)"),
    ]
    for dims, order in cases:
        cost, tree = ad.optimal_bracketing(dims)
        assert ad.format_bracketing(tree) == order
    assert ad.format_bracketing(ad.reverse_bracketing(4)) == "((J4 J3) J2) J1"
    assert ad.format_bracketing(ad.forward_bracketing(4)) == "J4 (J3 (J2 J1))"
    assert ad.forward_cost(cases[2][0]) / cost == pytest.approx(8.5)


def test_jacobian_sweep_counts_match_the_mode_formulas():
    dims_list = [[3, 8, 8, 2], [5, 4, 6, 7]]
    sweep = ad.jacobian_sweep(dims_list, repeats=1)
    d0 = np.array([d[0] for d in dims_list])
    d_out = np.array([d[-1] for d in dims_list])
    # one tangent (cotangent) pass per input (output) dimension, plus the primal
    # pass; PyTorch's rule for a product also multiplies by the zero tangent of
    # the weights once in forward mode
    np.testing.assert_array_equal(sweep["forward_ops"], (d0 + 2) * sweep["pass"])
    np.testing.assert_array_equal(sweep["reverse_ops"], (d_out + 1) * sweep["pass"])


def test_chain_rule_product_of_layer_jacobians():
    layers = ad.random_tanh_layers([5, 7, 6, 3], seed=1)
    x = torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    jacobians = [j.numpy() for j in ad.layer_jacobians(layers, x)]
    product, _ = ad.multiply_chain(jacobians, ad.reverse_bracketing(3))
    whole = torch.func.jacrev(ad.compose(layers))(x).numpy()
    np.testing.assert_allclose(product, whole, atol=1e-12)


def test_reverse_mode_saves_one_activation_per_layer_forward_mode_none():
    mem = ad.memory_sweep([2, 5, 9], width=16, n_samples=4)
    np.testing.assert_array_equal(mem["saved"], mem["predicted"])
    np.testing.assert_array_equal(mem["saved_forward"], [0, 0, 0])
    # the peak grows by one activation per layer; forward mode's does not grow
    activation = 4 * 16 * 8
    np.testing.assert_array_equal(
        np.diff(mem["peak_reverse"]), [3 * activation, 4 * activation]
    )
    assert mem["peak_forward"][2] == mem["peak_forward"][1]


def _chain(n_layers, width=8, n_samples=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    weights = [
        torch.randn(width, width, generator=gen, dtype=torch.float64) / math.sqrt(width)
        for _ in range(n_layers)
    ]
    x = torch.randn(n_samples, width, generator=gen, dtype=torch.float64)
    return weights, x.requires_grad_(True)


def test_saved_bytes_are_held_until_backward_frees_them():
    weights, x = _chain(6)
    activation = x.numel() * x.element_size()

    def forward(x):
        h = x
        for w in weights:
            h = torch.tanh(h @ w)
        return h.sum()

    held = ad.saved_bytes(forward, x, exclude=[x, *weights])
    assert held == {
        "peak_forward": 6 * activation,
        "end_of_forward": 6 * activation,
        "peak_backward": 6 * activation,
        "after_backward": 0,
    }
    # the weights count when they are not excluded
    with_weights = ad.saved_bytes(forward, x, exclude=[x])
    assert with_weights["end_of_forward"] == 6 * activation + sum(
        w.numel() * w.element_size() for w in weights
    )


def test_saved_bytes_counts_a_storage_saved_twice_once():
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)

    def forward(x):
        y = torch.exp(x)  # exp's backward rule saves its output y
        return (y * y).sum()  # and the product saves y twice more

    held = ad.saved_bytes(forward, x, exclude=[x])
    assert held["end_of_forward"] == x.numel() * x.element_size()


def test_saved_bytes_peak_sees_what_the_forward_pass_frees_again():
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)

    def forward(x):
        y = torch.exp(x)  # saved for exp's backward rule...
        (slope,) = torch.autograd.grad(y.sum(), x)  # ...and freed again here
        return slope.sum()

    held = ad.saved_bytes(forward, x, exclude=[x])
    assert held["peak_forward"] == x.numel() * x.element_size()
    assert held["end_of_forward"] == 0


@pytest.mark.parametrize("segment", [1, 2, 3, 4, 7, 12])
def test_checkpointed_gradient_equals_plain_reverse_mode(segment):
    weights, x = _chain(12)
    plain = ad.chain_gradient(weights, x)
    h = x
    for w in weights:
        h = torch.tanh(h @ w)
    (reference,) = torch.autograd.grad(h.sum(), x)
    torch.testing.assert_close(plain, reference, rtol=0, atol=0)
    torch.testing.assert_close(
        ad.chain_gradient(weights, x, segment), reference, rtol=0, atol=1e-15
    )


def test_checkpointing_memory_and_arithmetic_follow_the_schedule():
    segments = [1, 2, 4, 8, 16]
    sweep = ad.checkpoint_sweep(16, segments, width=32, n_samples=32)
    activation = 32 * 32 * 8
    # counted multiply-adds are exactly (3L - k_last) F, at most one extra pass
    np.testing.assert_array_equal(sweep["multiply_adds"], sweep["predicted_ops"])
    assert sweep["multiply_adds"].max() <= 3 * 16 * 32**3
    # the peak is (s - 1 + k) activations plus the same few in flight: one more
    # with checkpointing (the carried cotangent) than plain reverse mode (k = L)
    extra = (sweep["peak"] - sweep["stored"]) / activation
    assert np.all(np.abs(extra[:-1] - extra[0]) < 0.01)
    assert extra[-1] == pytest.approx(extra[0] - 1, abs=0.01)
    assert 0 < extra[0] <= 5
    assert np.argmin(sweep["peak"]) == segments.index(4)  # k = sqrt(16)
    np.testing.assert_array_equal(sweep["max_error"], 0.0)


def test_square_root_checkpointing_grows_like_square_root():
    peaks = []
    for n in (16, 64, 256):
        k = math.isqrt(n)
        peaks.append(ad.checkpoint_sweep(n, [k], width=8, n_samples=8)["peak"][0])
    activation = 8 * 8 * 8
    extra = [
        p / activation - (2 * math.isqrt(n) - 1)
        for p, n in zip(peaks, (16, 64, 256), strict=True)
    ]
    assert max(extra) - min(extra) < 0.01


def test_weight_gradient_costs_three_passes_less_the_first_backward_product():
    for dims in ([784, 256, 256, 10], [5, 7, 3], [3, 9, 9, 9, 2]):
        assert (
            ad.weight_gradient_ops(dims) == 3 * ad.pass_cost(dims) - dims[0] * dims[1]
        )


def test_sgd_run_records_the_steps_asked_for_and_learns():
    x_train, y_train, x_test, y_test, _ = load_digits(scaling="unit")
    params = ad.init_params(seed=0)
    acc = ad.sgd_run(
        params,
        x_train,
        y_train,
        x_test,
        y_test,
        lr=1.0,
        batch_size=10,
        record=[135, 1, 270],
    )
    assert sorted(acc) == [1, 135, 270]
    assert acc[270] > 0.5 > acc[1]
    # batch_size=1 and larger batches walk the same shuffled order
    one = ad.sgd_run(
        ad.init_params(seed=0),
        x_train,
        y_train,
        x_test,
        y_test,
        lr=0.1,
        batch_size=1,
        record=[5],
    )
    manual = ad.init_params(seed=0)
    order = np.random.default_rng(0).permutation(len(y_train))
    for i in order[:5]:
        _, grads = ad.sample_gradients(manual, x_train[i], int(y_train[i]))
        for p, g in zip(manual, grads, strict=True):
            p -= 0.1 * g
    assert one[5] == ad.accuracy(manual, x_test, y_test)


def _tiny_sgd_run(**kwargs):
    """``sgd_run`` on one example of the digits' shape."""
    x, y = np.ones((1, 64)), np.ones(1, dtype=int)
    return ad.sgd_run(ad.init_params(), x, y, x, y, lr=0.1, **kwargs)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ad.memory_sweep([]), "n_layers"),
        (lambda: ad.memory_sweep([2, 0]), r"n_layers\[1\]"),
        (lambda: ad.checkpoint_sweep(4, [5]), r"segments\[0\]"),
        (lambda: ad.checkpoint_sweep(4, []), "segments"),
        (lambda: ad.chain_gradient([], torch.ones(2, 2)), "weights"),
        (lambda: ad.chain_gradient([torch.eye(2)], torch.ones(1, 2), 0), "segment"),
        (lambda: ad.saved_bytes(lambda x: x * 2, torch.ones(3)), "scalar"),
        (lambda: ad.weight_gradient_ops([3]), "dims"),
        (lambda: _tiny_sgd_run(batch_size=0, record=[1]), "batch_size"),
        (lambda: _tiny_sgd_run(batch_size=1, record=[]), "record"),
        (
            lambda: ad.sgd_epoch(
                ad.init_params(), np.ones((2, 64)), np.ones(1, dtype=int), lr=0.1
            ),
            "x and y",
        ),
        (lambda: ad.run_program([("sin", 0, 0)], [1.0]), "operation"),
    ],
)
def test_memory_and_training_arguments_are_checked(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.fixture(scope="module")
def small_loss():
    gen = set_seed(3)
    net = nets.mlp(
        2, 6, 3, "tanh", bias=True, sigma_b=0.5, seed=gen, dtype=torch.float64
    )
    x = torch.randn(20, 2, generator=gen, dtype=torch.float64)
    y = torch.sin(x[:, :1])
    return ad.flat_loss(net, x, y)


def test_hvp_matches_explicit_hessian(small_loss):
    loss, w = small_loss
    hess = ad.hessian_matrix(loss, w)
    np.testing.assert_allclose(hess.numpy(), hess.numpy().T, atol=1e-10)
    v = torch.randn(
        w.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    expected = (hess @ v).numpy()
    np.testing.assert_allclose(
        ad.hvp_forward_over_reverse(loss, w, v).numpy(), expected, atol=1e-8
    )
    np.testing.assert_allclose(
        ad.hvp_reverse_over_reverse(loss, w, v).numpy(), expected, atol=1e-8
    )
    eigenvalues = np.linalg.eigvalsh(hess.numpy())
    top = eigenvalues[np.argmax(np.abs(eigenvalues))]
    found, _ = ad.top_hessian_eigenvalue(loss, w, n_iter=2000, tol=1e-12)
    assert found == pytest.approx(top, rel=1e-6)


def test_hvp_costs_a_small_multiple_of_a_gradient(small_loss):
    loss, w = small_loss
    costs = ad.hvp_costs(loss, w, repeats=1)
    for name in ("forward-over-reverse", "reverse-over-reverse"):
        ratio = costs[name][0] / costs["gradient"][0]
        assert 1.5 <= ratio <= 5.0


def test_scalar_engine_matches_autograd():
    assert ad.engine_vs_autograd(40, n_inputs=4, n_ops=15, seed=7) < 1e-12


@pytest.fixture(scope="module")
def digits():
    return load_digits(scaling="unit")


def test_numpy_gradients_match_autograd_and_finite_differences(digits):
    x_train, y_train = digits.x_train, digits.y_train
    params = ad.init_params(seed=2)
    loss, grads = ad.batch_gradients(params, x_train[:25], y_train[:25])
    ref_loss, ref_grads = ad.autograd_gradients(params, x_train[:25], y_train[:25])
    assert loss == pytest.approx(ref_loss, abs=1e-12)
    for g, r in zip(grads, ref_grads, strict=True):
        assert g.shape == r.shape
        assert np.max(np.abs(g - r)) <= 1e-10
    assert ad.finite_difference_check(params, x_train[:25], y_train[:25], grads) <= 1e-6
    loss1, grads1 = ad.sample_gradients(params, x_train[3], int(y_train[3]))
    ref_loss1, ref1 = ad.autograd_gradients(params, x_train[3], y_train[3])
    assert loss1 == pytest.approx(ref_loss1, abs=1e-12)
    assert (
        max(np.max(np.abs(g - r)) for g, r in zip(grads1, ref1, strict=True)) <= 1e-10
    )


def test_per_sample_sgd_learns_the_digits(digits):
    x_train, y_train, x_test, y_test, _ = digits
    params = ad.init_params(seed=0)
    assert ad.accuracy(params, x_test, y_test) < 0.3
    ad.sgd_epoch(params, x_train, y_train, lr=0.2, seed=0)
    assert ad.accuracy(params, x_test, y_test) > 0.4


def test_three_epochs_of_per_sample_sgd_reach_85_percent(digits):
    """The page's run: from chance to above 85% test accuracy in three epochs."""
    x_train, y_train, x_test, y_test, _ = digits
    params = ad.init_params(seed=0)
    for epoch in range(1, 4):
        ad.sgd_epoch(params, x_train, y_train, lr=0.1, seed=epoch)
    assert ad.accuracy(params, x_test, y_test) >= 0.85


def test_batched_gradient_is_the_mean_of_per_sample_gradients(digits):
    x_train, y_train = digits.x_train, digits.y_train
    params = ad.init_params(seed=1)
    _, batched = ad.batch_gradients(params, x_train[:30], y_train[:30])
    per_sample = [
        ad.sample_gradients(params, x, int(y))[1]
        for x, y in zip(x_train[:30], y_train[:30], strict=True)
    ]
    for k, b in enumerate(batched):
        mean = np.mean([g[k] for g in per_sample], axis=0)
        np.testing.assert_allclose(b, mean, atol=1e-15)


def test_init_variance_is_one_over_the_larger_fan():
    params = ad.init_params((400, 300, 10), seed=0)
    assert np.var(params[0]) == pytest.approx(1 / 400, rel=0.02)
    assert np.var(params[2]) == pytest.approx(1 / 300, rel=0.1)
    assert not params[1].any()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ad.forward_cost([]), "dims"),
        (lambda: ad.reverse_cost([4]), "dims"),
        (lambda: ad.optimal_bracketing([3, 0, 2]), "dims"),
        (lambda: ad.pass_cost([3, -1]), "dims"),
        (lambda: ad.bracketing_cost([2, 3, 4], (1, 2)), "tree"),
        (lambda: ad.bracketing_cost([2, 3, 4], 1), "tree"),
        (lambda: ad.multiply_chain([], 1), "jacobians"),
        (lambda: ad.multiply_chain([np.ones((3, 2)), np.ones((4, 2))], (2, 1)), "J_2"),
        (lambda: ad.compose([]), "layers"),
        (
            lambda: ad.hvp_forward_over_reverse(
                torch.sum, torch.ones(3), torch.ones(4)
            ),
            "w and v",
        ),
        (lambda: ad.jacobian_sweep([]), "dims_list"),
        (lambda: ad.init_params((64, 0, 10)), "dims"),
        (lambda: ad.random_program(0, 3), "n_inputs"),
        (
            lambda: ad.sgd_epoch([], np.ones((1, 2)), np.ones(1, dtype=int), lr=0.1),
            "params",
        ),
        (
            lambda: ad.sgd_epoch(
                ad.init_params(), np.ones((1, 64)), np.ones(1, dtype=int), lr=-1.0
            ),
            "lr",
        ),
        (
            lambda: ad.sample_gradients(ad.init_params((64, 10)), np.ones(64), 0),
            "params",
        ),
        (
            lambda: ad.predict_proba(
                [np.ones((64, 32)), np.ones(10)], np.ones((1, 64))
            ),
            "params",
        ),
        (
            lambda: ad.top_hessian_eigenvalue(torch.sum, torch.ones(2, 2)),
            "w must be a vector",
        ),
        (
            lambda: ad.plot_memory_sweep(
                None,
                [1, 2],
                {
                    k: [1]
                    for k in ("predicted", "saved", "peak_reverse", "peak_forward")
                },
            ),
            "memory",
        ),
        (lambda: ad.plot_jacobian_sweep(None, [8, 16], {}, {}, fixed=0), "fixed"),
        # a label outside 0..9 would otherwise index past the softmax
        (
            lambda: ad.batch_gradients(ad.init_params(), np.ones((2, 64)), [3, 10]),
            r"y must hold integer labels in 0\.\.9",
        ),
        (
            lambda: ad.batch_gradients(ad.init_params(), np.ones((1, 64)), [-1]),
            "y must hold integer labels",
        ),
        (
            lambda: ad.sample_gradients(ad.init_params(), np.ones(64), 12),
            "label must hold integer labels",
        ),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
