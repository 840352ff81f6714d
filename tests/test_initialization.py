"""Tests of whydeep.initialization: the variance rules against measurement."""

import itertools
import math

import numpy as np
import pytest
import torch

from whydeep import initialization as ini
from whydeep import meanfield as mf
from whydeep.data import load_digits
from whydeep.nets import linear_layers, mlp
from whydeep.plotting import power_law_fit

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
    ini.initialize_(
        layer,
        kwargs["rule"],
        kwargs["activation"],
        gain=kwargs.get("gain"),
        seed=3,
    )
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
    net = ini.layer_stack(widths, "relu")
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
    stack = ini.layer_stack([8, 8, 8], "tanh")
    assert isinstance(stack[-1], torch.nn.Tanh)  # every layer alike


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ini.init_std("fan_in", 0, 10), "fan_in"),
        (lambda: ini.init_std("fan_in", 10, 0), "fan_out"),
        (lambda: ini.init_std("fan_in", 10, 10, "sigmoid"), "activation"),
        (lambda: ini.init_std("lecun", 10, 10), "rule"),
        (lambda: ini.init_std("fan_in", 10, 10, gain=-1.0), "gain"),
        (lambda: ini.activation_gain("softplus"), "activation"),
        (lambda: ini.layer_stack([10], "relu"), "sizes"),
        (lambda: ini.initialize_(torch.nn.ReLU(), "fan_in"), "net"),
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
        net = ini.initialize_(
            mlp(sizes=[64, 256, 128, 64, 10], activation="relu", bias=True, sigma=None),
            "fan_in",
            "relu",
            variance_scale=scale,
            seed=0,
        )
        h = ini.train_classifier(
            net,
            x_train,
            y_train,
            x_test,
            y_test,
            lr=0.3,
            max_steps=100,
            record_every=50,
        )
        accuracy[scale], loss[scale] = h.extra["test_accuracy"][-1], h.loss[-1]
    assert accuracy[1.0] >= 0.95
    # weights ten times too small: still the loss of a uniform guess
    assert loss[0.01] == pytest.approx(math.log(10), abs=0.01)
    assert accuracy[0.01] < 0.2
