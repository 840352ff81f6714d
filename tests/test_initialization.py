"""Tests of whydeep.initialization: the variance rules against measurement."""

import itertools
import math

import numpy as np
import pytest
import torch

from whydeep import initialization as ini
from whydeep import meanfield as mf
from whydeep.data import load_digits
from whydeep.nets import BatchedMLP, init_gaussian_, linear_layers, mlp
from whydeep.plotting import power_law_fit
from whydeep.training import fit

N_LAYERS = 50
WIDTH = 500


def test_single_layer_variance_matches_fan_in_rule():
    # relative standard error of a sample variance is about sqrt(2 / n_trials) ~ 0.6%;
    # the tolerance is 3% to leave room for the heavier tails of a sum of products
    g = torch.Generator().manual_seed(0)
    for n_in, sigma, v in [(10, 0.5, 1.0), (50, 0.3, 2.0), (200, 0.05, 3.0)]:
        m = ini.single_layer_moments(n_in, sigma, v, n_trials=50_000, seed=g)
        assert m["theory"] == pytest.approx(n_in * sigma**2 * v**2)
        assert m["var_a"] == pytest.approx(m["theory"], rel=0.03)
        # the second moment of ReLU's output is half the variance, for any symmetric a
        assert m["relu_second_moment"] == pytest.approx(m["theory"] / 2, rel=0.03)
        # its variance is smaller; the factor 1/2 - 1/(2 pi) needs a Gaussian a, which a
        # sum of 10 products is not (that case is 4% off), but 50 or more nearly are
        if n_in >= 50:
            assert m["relu_var"] == pytest.approx(
                m["theory"] * (0.5 - 0.5 / math.pi), rel=0.03
            )
        assert m["relu_var"] < m["relu_second_moment"]


@pytest.mark.parametrize(
    ("kwargs", "torch_init"),
    [
        (
            dict(rule="fan_in", activation="relu"),
            lambda w, g: torch.nn.init.kaiming_normal_(
                w, nonlinearity="relu", generator=g
            ),
        ),
        (
            dict(rule="fan_out", activation="relu"),
            lambda w, g: torch.nn.init.kaiming_normal_(
                w, mode="fan_out", nonlinearity="relu", generator=g
            ),
        ),
        (
            dict(rule="fan_in", activation="linear"),
            lambda w, g: torch.nn.init.kaiming_normal_(
                w, nonlinearity="linear", generator=g
            ),
        ),
        (
            dict(rule="glorot", activation="linear"),
            lambda w, g: torch.nn.init.xavier_normal_(w, generator=g),
        ),
        (
            dict(rule="glorot", activation="relu"),
            lambda w, g: torch.nn.init.xavier_normal_(
                w, gain=torch.nn.init.calculate_gain("relu"), generator=g
            ),
        ),
        (
            dict(rule="glorot", activation="tanh", gain=5 / 3),
            lambda w, g: torch.nn.init.xavier_normal_(
                w, gain=torch.nn.init.calculate_gain("tanh"), generator=g
            ),
        ),
    ],
)
def test_rules_agree_with_torch_init(kwargs, torch_init):
    fan_in, fan_out = 300, 120
    reference = torch.empty(fan_out, fan_in, dtype=torch.float64)
    torch_init(reference, torch.Generator().manual_seed(3))
    layer = torch.nn.Linear(fan_in, fan_out, bias=False, dtype=torch.float64)
    gain = kwargs.get("gain") or ini.activation_gain(kwargs["activation"])
    init_gaussian_(layer, gain, rule=kwargs["rule"], seed=3)
    rel = ((layer.weight - reference).abs() / reference.abs()).max().item()
    assert rel < 1e-6
    std = ini.init_std(
        kwargs["rule"], fan_in, fan_out, kwargs["activation"], gain=kwargs.get("gain")
    )
    assert reference.std().item() == pytest.approx(std, rel=0.02)


def test_rule_formulas():
    assert ini.init_std("glorot", 100, 300) == pytest.approx(math.sqrt(2 / 400))
    assert ini.init_std("sum_fan", 100, 300, gain=2.0) == pytest.approx(
        2 / math.sqrt(400)
    )
    assert ini.init_std("max_fan", 100, 300) == pytest.approx(1 / math.sqrt(300))
    assert ini.init_std("uniform_heuristic", 100, 7) == pytest.approx(
        1 / math.sqrt(300)
    )
    assert ini.init_std("fan_in", 100, 7, "relu") == pytest.approx(math.sqrt(2 / 100))
    # the uniform heuristic is PyTorch's default for nn.Linear weights
    layer = torch.nn.Linear(2000, 2000)
    assert layer.weight.std().item() == pytest.approx(
        ini.init_std("uniform_heuristic", 2000, 2000), rel=0.01
    )


def _forward(activation, variance_scale, n_networks, seed=0):
    profile = ini.ensemble_profiles(
        [WIDTH] * (N_LAYERS + 1),
        activation,
        variance_scale=variance_scale,
        n_networks=n_networks,
        n_samples=8,
        seed=seed,
        backward=False,
    )
    return profile.forward_mean / profile.forward_mean[0]


def test_matching_rule_keeps_the_variance_within_a_factor_two():
    # a single ReLU network wanders (log-variance steps of variance ~5/width per layer);
    # the ensemble mean over 16 networks is the variance the derivation predicts
    for activation, n_networks in [("linear", 1), ("relu", 16)]:
        ratio = _forward(activation, 1.0, n_networks)
        assert ratio.min() > 0.5 and ratio.max() < 2.0, (
            activation,
            ratio.min(),
            ratio.max(),
        )


def test_rule_off_by_two_leaves_the_window():
    for activation in ("linear", "relu"):
        low, high = _forward(activation, 0.5, 1), _forward(activation, 2.0, 1)
        assert low[-1] < 1e-3 and high[-1] > 1e3
        # and at the predicted rate 2**(+-1) per layer, to within 10% per layer
        assert np.log2(low[-1]) / N_LAYERS == pytest.approx(-1, abs=0.1)
        assert np.log2(high[-1]) / N_LAYERS == pytest.approx(1, abs=0.1)


def test_tanh_differs_as_the_page_says():
    # sigma_w = 1: a power-law decay, close to 1/(2 l); above: a positive fixed point;
    # below: exponential decay; never growth beyond 1 because |tanh| < 1
    at = _forward("tanh", 1.0, 1)
    assert power_law_fit(np.arange(10, N_LAYERS + 1), at[10:])[0] == pytest.approx(
        -1, abs=0.2
    )
    assert at[N_LAYERS] * 2 * N_LAYERS == pytest.approx(1, rel=0.3)
    mean_field = mf.length_profile(1.0, 1.0, n_steps=N_LAYERS)  # sigma_w = 1
    assert np.allclose(at, mean_field, rtol=0.15)
    above = _forward("tanh", 2.0, 1)
    assert above[-1] == pytest.approx(
        mf.length_profile(2.0, math.sqrt(2), n_steps=200)[-1] / 2, rel=0.05
    )
    assert above.max() <= 1.0
    assert _forward("tanh", 0.5, 1)[-1] < 1e-12


def test_backward_pass_matches_autograd_and_fan_out_rule():
    widths = [40, 80, 20, 60]
    profiles = ini.ensemble_profiles(
        widths,
        "relu",
        "fan_out",
        n_networks=1,
        n_samples=5,
        seed=4,
        keep_layers=[1, 2, 3],
    )
    net = mlp(sizes=widths, activation="relu", output_activation="relu")
    stds = [
        ini.init_std("fan_out", a, b, "relu") for a, b in itertools.pairwise(widths)
    ]
    with torch.no_grad():
        for k, layer in enumerate(linear_layers(net)):
            layer.weight.copy_(
                ini._layer_weights(4, k + 1, 1, widths[k], widths[k + 1], stds[k])[0]
            )
    # the ensemble draws its inputs, then its output gradient, from one generator
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 5, widths[0], generator=g)[0]
    r = torch.randn(1, 5, widths[-1], generator=g)[0]
    signals = ini.propagate(net, x, output_gradient=r)
    for k in (1, 2, 3):
        assert torch.allclose(
            signals.preactivations[k - 1], profiles.preactivations[k][0], atol=1e-5
        )
        assert torch.allclose(
            signals.input_gradients[k], profiles.gradients[k][0], atol=1e-5
        )
    # fan_out rule in a deep ReLU stack: the gradient's second moment is kept
    deep = ini.ensemble_profiles(
        [200] * 31, "relu", "fan_out", n_networks=4, n_samples=8
    )
    ratio = deep.backward_mean / deep.backward_mean[-1]
    assert ratio.min() > 0.5 and ratio.max() < 2.0


def test_forward_pass_alone_keeps_no_gradients():
    kwargs = dict(n_networks=2, n_samples=4, keep_layers=[1, 2])
    alone = ini.ensemble_profiles([20, 30, 10], "relu", backward=False, **kwargs)
    both = ini.ensemble_profiles([20, 30, 10], "relu", **kwargs)
    np.testing.assert_array_equal(alone.forward, both.forward)
    assert alone.preactivations.keys() == both.gradients.keys() == {1, 2}
    assert np.isnan(alone.backward).all() and alone.gradients == {}


def test_edge_of_chaos_at_sigma_one():
    assert mf.fixed_point(0.9) == 0.0
    assert mf.chi1(1.0) == pytest.approx(1.0, abs=1e-9)
    assert mf.chi1(0.8) == pytest.approx(0.64, abs=1e-9)
    assert mf.chi1(1.5) > 1.0
    q = float(mf.fixed_point(1.5))
    assert q == pytest.approx(mf.length_profile(q, 1.5, n_steps=500)[-1], rel=1e-12)


def test_sized_classifier_and_digits():
    x_train, _y_train, x_test, y_test, images = load_digits().to_torch()
    assert x_train.shape[1] == 64 and images.shape[1:] == (8, 8)
    assert len(x_test) == len(y_test) == len(images)
    assert torch.allclose(x_train.mean(0), torch.zeros(64), atol=1e-5)
    net = mlp(sizes=[64, 256, 128, 64, 10], activation="relu", bias=True)
    assert [m.out_features for m in linear_layers(net)] == [256, 128, 64, 10]
    assert isinstance(net[-1], torch.nn.Linear)  # logits: no output activation


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ini.init_std("fan_in", 0, 10), "fan_in"),
        (lambda: ini.init_std("fan_in", 10, 0), "fan_out"),
        (lambda: ini.init_std("fan_in", 10, 10, "sigmoid"), "activation"),
        (lambda: ini.init_std("lecun", 10, 10), "rule"),
        (lambda: ini.init_std("fan_in", 10, 10, gain=-1.0), "gain"),
        (lambda: ini.activation_gain("softplus"), "activation"),
        (lambda: init_gaussian_(torch.nn.ReLU()), "net"),
        (lambda: init_gaussian_(torch.nn.Linear(2, 2), rule="lecun"), "rule"),
        (lambda: ini.ensemble_profiles([10, 10], "gelu"), "activation"),
        (lambda: ini.single_layer_moments(0, 1.0, 1.0), "n_in"),
        (lambda: mlp(sizes=[64], activation="relu"), "sizes"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_forward_rule_scales_the_gradient_by_the_end_widths():
    # under 1/n_in the per-layer gradient factors n_l / n_(l-1) telescope to n_L / n_0,
    # whatever the widths in between (the funnel and the zigzag of the page)
    for widths in ([512, 256, 128, 64, 32], [50, 400, 30, 300, 80, 200, 100]):
        p = ini.ensemble_profiles(
            widths, "linear", "fan_in", n_networks=16, n_samples=16, seed=9
        )
        measured = p.backward_mean[0] / p.backward_mean[-1]
        assert measured == pytest.approx(widths[-1] / widths[0], rel=0.15)


def test_glorot_factors_multiply_to_at_most_one():
    for fan_in, fan_out in [(64, 256), (256, 128), (100, 100), (10, 1000)]:
        var = ini.init_std("glorot", fan_in, fan_out) ** 2
        forward, backward = fan_in * var, fan_out * var
        assert 0 < forward < 2 + 1e-12 and 0 < backward < 2 + 1e-12
        assert forward * backward <= 1 + 1e-12


def test_he_trains_the_digits_and_a_tiny_init_does_not():
    x_train, y_train, x_test, y_test, _ = load_digits(0.25, seed=0).to_torch()
    accuracy, loss = {}, {}
    for scale in (1.0, 0.01):
        # He's variance times ``scale``, biases zero
        sizes = [64, 256, 128, 64, 10]
        net = mlp(
            sizes=sizes,
            activation="relu",
            bias=True,
            sigma=math.sqrt(2 * scale),
            seed=0,
        )
        h = fit(
            net,
            x_train,
            y_train,
            optimizer="sgd",
            lr=0.3,
            max_steps=100,
            loss_fn=torch.nn.functional.cross_entropy,
            record_every=50,
        )
        with torch.no_grad():
            correct = net(x_test).argmax(dim=1) == y_test
        accuracy[scale], loss[scale] = correct.double().mean().item(), h.loss[-1]
    assert accuracy[1.0] >= 0.95
    # weights ten times too small: still the loss of a uniform guess
    assert loss[0.01] == pytest.approx(math.log(10), abs=0.01)
    assert accuracy[0.01] < 0.2


# --------------------------------------------------------------------------
# The table of rules: one gain c in every row
# --------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ini.RULES)
def test_every_rule_is_its_gain_over_the_root_of_a_fan(rule):
    fan = {
        "fan_in": 100,
        "fan_out": 300,
        "glorot": 200,
        "sum_fan": 400,
        "max_fan": 300,
        "uniform_heuristic": 300,
    }[rule]
    for activation, c in (("linear", 1.0), ("tanh", 1.0), ("relu", math.sqrt(2))):
        assert ini.init_std(rule, 100, 300, activation) == pytest.approx(
            c / math.sqrt(fan), rel=1e-12
        )
    assert ini.init_std(rule, 100, 300, "relu", gain=0.3) == pytest.approx(
        0.3 / math.sqrt(fan), rel=1e-12
    )


def test_pytorch_default_is_the_uniform_heuristic_with_gain_one():
    torch.manual_seed(0)
    for fan_in in (64, 32):
        weight = torch.nn.Linear(fan_in, 20_000).weight
        std = ini.init_std("uniform_heuristic", fan_in, 10, gain=1.0)
        assert std == pytest.approx(math.sqrt(1 / (3 * fan_in)), rel=1e-12)
        assert weight.std().item() == pytest.approx(std, rel=0.01)
        assert weight.abs().max().item() <= 1 / math.sqrt(fan_in)


# --------------------------------------------------------------------------
# Trainability against depth
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("sigma_w", "c0"), [(0.8, 0.2), (2.5, 0.5), (1.7, 0.3)])
def test_depth_scale_is_the_decay_length_of_the_correlation_map(sigma_w, c0):
    sigma_b = math.sqrt(0.05)
    xi = float(mf.depth_scale(sigma_w, sigma_b))
    c_star = float(mf.correlation_fixed_point(sigma_w, sigma_b))
    chi_c = float(mf.correlation_slope(c_star, sigma_w, sigma_b))
    assert xi == pytest.approx(-1 / math.log(chi_c), rel=1e-10)
    # 40 layers: in the ordered phase c_l reaches 1 to rounding error soon after
    c = mf.iterate_correlation(c0, sigma_w, sigma_b, 40)
    distance = np.abs(c - c_star)
    layers = np.arange(41)
    late = (layers >= 20) & (distance > 1e-12)
    slope = np.polyfit(layers[late], np.log(distance[late]), 1)[0]
    assert -1 / slope == pytest.approx(xi, rel=0.02)


def test_critical_gain_puts_chi1_at_one():
    # without bias chi_1 leaves 1 only quadratically slowly above sigma_w = 1
    assert ini.critical_gain(0.0) == pytest.approx(1.0, abs=1e-7)
    for sigma_b in (0.05, 0.3):
        gain = ini.critical_gain(sigma_b)
        assert float(mf.chi1(gain, sigma_b)) == pytest.approx(1.0, abs=1e-9)
        assert gain > 1


def test_trainable_depth():
    depths = [2, 4, 8, 16]
    accuracy = [
        [0.9, 0.9, 0.2, 0.9],  # a later success after a failure does not count
        [0.1, 0.9, 0.9, 0.9],
        [0.9, 0.9, 0.9, 0.9],
        [0.9, np.nan, 0.9, 0.9],
    ]
    assert ini.trainable_depth(depths, accuracy).tolist() == [4, 0, 16, 2]
    with pytest.raises(ValueError, match="depths"):
        ini.trainable_depth([4, 2], [[1, 1]])
    with pytest.raises(ValueError, match="accuracy"):
        ini.trainable_depth([2, 4], [1, 1])


def _stack(depths, **kwargs):
    return BatchedMLP(6, 5, depths, "tanh", n_out=3, bias=True, seed=2, **kwargs)


def _member(stack, k):
    """Network ``k`` of ``stack`` as (weight, bias) pairs, read from its own net."""
    return [(m.weight, m.bias) for m in linear_layers(stack.member(k))]


def test_classifier_stack_computes_each_network_on_its_own():
    x = torch.randn(7, 6, generator=torch.Generator().manual_seed(3))
    depths = [3, 5, 2, 4]
    stack = _stack(depths, sigma=[0.5, 1.0, 1.5, 2.0], sigma_b=0.3)
    out = stack(x)
    assert out.shape == (4, 7, 3)
    for k, depth in enumerate(depths):
        h = x
        layers = _member(stack, k)
        assert len(layers) == depth
        for i, (w, b) in enumerate(layers):
            h = h @ w.T + b
            if i < depth - 1:
                h = torch.tanh(h)
        torch.testing.assert_close(out[k], h)


def test_classifier_stack_gains_and_torch_default():
    stack = BatchedMLP(
        400,
        300,
        [3, 3],
        "relu",
        n_out=10,
        sigma=[2.0, 1.0],
        bias=True,
        torch_default=[False, True],
        seed=0,
    )
    first = stack.weights[0]
    assert first[0].std().item() == pytest.approx(2.0 / math.sqrt(400), rel=0.02)
    assert first[1].std().item() == pytest.approx(math.sqrt(1 / (3 * 400)), rel=0.02)
    assert first[1].abs().max().item() <= 1 / math.sqrt(400)
    assert stack.biases[0][0].abs().max().item() == 0.0
    assert stack.biases[0][1].abs().max().item() > 0.0


def test_networks_of_a_stack_train_as_if_alone():
    x, y, *_ = load_digits(0.25, seed=0).to_torch()
    x, y = x[:200, :6], y[:200] % 3
    together = _stack([4, 2, 3], sigma=[1.0, 1.2, 0.9], sigma_b=0.1)
    alone = _stack([4], sigma_b=0.1)
    with torch.no_grad():
        for i, (w, b) in enumerate(_member(together, 0)):
            alone.weights[i].copy_(w[None])
            alone.biases[i].copy_(b[None])
    kwargs = dict(optimizer="sgd", lr=0.1, n_steps=20, batch_size=50, seed=4)
    runs_together = ini.train_stack(together, x, y, **kwargs)
    runs_alone = ini.train_stack(alone, x, y, **kwargs)
    np.testing.assert_allclose(
        runs_together.train_loss[0], runs_alone.train_loss[0], rtol=1e-5
    )
    # recorded at step 0, every 10 steps and the last; no test set, no test accuracy
    assert runs_together.steps.tolist() == [0, 10, 20]
    assert runs_together.train_accuracy.shape == (3, 3)
    assert np.isnan(runs_together.test_accuracy).all()
    assert runs_together.train_loss[0, -1] < runs_together.train_loss[0, 0]


def test_depth_beyond_a_few_xi_c_does_not_train():
    # ordered phase, xi_c ~ 0.7: depth 3 trains, depth 16 cannot within the budget
    x, y, *_ = load_digits(0.25, seed=0).to_torch()
    sigma_b = math.sqrt(0.05)
    assert 6 * float(mf.depth_scale(0.5, sigma_b)) < 16
    stack = BatchedMLP(
        64,
        32,
        [3, 16, 3, 16],
        "tanh",
        n_out=10,
        sigma=[0.5, 0.5, 1.2, 1.2],
        bias=True,
        sigma_b=sigma_b,
        seed=0,
    )
    runs = ini.train_stack(
        stack, x, y, lr=0.05, n_steps=150, batch_size=32, record_every=150
    )
    accuracy = runs.train_accuracy[:, -1]
    assert accuracy[0] > 0.8 and accuracy[2] > 0.8  # shallow: both train
    assert accuracy[1] < 0.3  # ordered, 16 >> 6 xi_c: stuck near chance
    assert accuracy[3] > 0.8  # near the edge of chaos, xi_c = 12: trains


# --------------------------------------------------------------------------
# Orthogonal weights and the Jacobian
# --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(16, 16), (8, 20), (20, 8), (3, 4, 5)])
@pytest.mark.parametrize("gain", [1.0, 0.7])
def test_orthogonal_matches_torch_where_they_overlap(shape, gain):
    ours = ini.orthogonal_(
        torch.empty(shape, dtype=torch.float64),
        gain,
        seed=11,
    )
    if len(shape) == 2:
        theirs = torch.nn.init.orthogonal_(
            torch.empty(shape, dtype=torch.float64),
            gain,
            generator=torch.Generator().manual_seed(11),
        )
        assert torch.equal(ours, theirs)
    # every matrix, batched or not, has orthonormal rows or columns times gain
    small = min(shape[-2:])
    gram = ours.mT @ ours if shape[-2] >= shape[-1] else ours @ ours.mT
    eye = gain**2 * torch.eye(small, dtype=torch.float64)
    torch.testing.assert_close(gram, eye.expand_as(gram), atol=1e-12, rtol=0)


def test_orthogonal_rejects_a_vector():
    with pytest.raises(ValueError, match="weight"):
        ini.orthogonal_(torch.empty(5))
    with pytest.raises(ValueError, match="gain"):
        ini.orthogonal_(torch.empty(5, 5), gain=0.0)


def test_orthogonal_linear_network_is_an_exact_isometry():
    spectra = ini.jacobian_spectra(
        [1, 10, 60], 32, "linear", "orthogonal", gain=1.1, n_networks=2
    )
    for depth, sv in zip(spectra.depths, spectra.singular_values, strict=True):
        np.testing.assert_allclose(sv, 1.1**depth, rtol=1e-10)
    np.testing.assert_allclose(spectra.spread(), 0.0, atol=1e-18)


def test_jacobian_matches_autograd():
    # the Jacobian built layer by layer is the derivative of the network
    spectra = ini.jacobian_spectra([3], 6, "tanh", "gaussian", gain=1.3, n_networks=1)
    # rebuild the same network from the same draws
    gen = torch.Generator().manual_seed(0)
    h0 = torch.randn(1, 6, 1, generator=gen, dtype=torch.float64)
    layers = []
    for _ in range(3):
        w = torch.empty(1, 6, 6, dtype=torch.float64).normal_(
            0.0, 1.3 / math.sqrt(6), generator=gen
        )
        b = torch.randn(1, 6, 1, generator=gen, dtype=torch.float64)
        layers.append((w[0], 0.0 * b[0]))

    def net(v):
        for w, b in layers:
            v = torch.tanh(w @ v + b)
        return v

    jac = torch.autograd.functional.jacobian(net, h0[0])[:, 0, :, 0]
    np.testing.assert_allclose(
        spectra.singular_values[0, 0], torch.linalg.svdvals(jac).numpy(), rtol=1e-10
    )


@pytest.mark.parametrize(
    ("activation", "weights", "depth", "rel"),
    [
        ("linear", "gaussian", 8, 0.15),
        ("tanh", "gaussian", 8, 0.15),
        ("tanh", "orthogonal", 8, 0.15),
    ],
)
def test_jacobian_spread_follows_free_probability(activation, weights, depth, rel):
    sigma_b = 0.05
    if activation == "tanh":
        gain = ini.critical_gain(sigma_b)
        q = float(mf.fixed_point(gain, sigma_b))
        kwargs = dict(
            gain=gain, sigma_b=sigma_b, input_second_moment=(q - sigma_b**2) / gain**2
        )
    else:
        q, kwargs = 0.0, {}
    spectra = ini.jacobian_spectra(
        [depth], 256, activation, weights, n_networks=8, seed=1, **kwargs
    )
    theory = ini.jacobian_spread_theory(depth, activation, weights, q=q)
    assert spectra.spread()[0] == pytest.approx(float(theory), rel=rel)
    if weights == "orthogonal":
        # far narrower than Gaussian weights at the same depth
        assert float(theory) < 0.1 * depth
