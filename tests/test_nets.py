"""Tests of whydeep.nets: the book's conventions for building networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from whydeep import nets


@pytest.mark.parametrize(
    ("n_in", "width", "depth", "n_out", "bias"),
    [
        (10, 3, 2, 1, False),
        (5, 7, 5, 1, False),
        (4, 16, 3, 3, True),
        (1, 1, 2, 1, True),
    ],
)
def test_parameter_formula_matches_allocated_tensors(n_in, width, depth, n_out, bias):
    net = nets.mlp(n_in, width, depth, n_out=n_out, bias=bias)
    assert nets.n_params(n_in, width, depth, n_out, bias=bias) == nets.count_params(net)


def test_worked_parameter_count_of_the_conventions_page():
    assert nets.n_params(10, 3, 2) == 33


def test_depth_counts_the_input_layer():
    net = nets.mlp(4, 3, 4)
    assert len(nets.linear_layers(net)) == 4 - 1 + 1 - 1 + 1  # D-1 hidden + output
    assert nets.layer_sizes(4, 3, 2) == [4, 3, 1]
    assert nets.layer_sizes(4, 3, 4) == [4, 3, 3, 3, 1]


@pytest.mark.parametrize(
    ("name", "module"), [("tanh", nn.Tanh), ("relu", nn.ReLU), ("linear", nn.Identity)]
)
def test_activation_is_the_one_asked_for(name, module):
    # Regression test: a classic version of this helper compared instead of
    # assigning for 'relu', so asking for ReLU silently gave tanh.
    net = nets.mlp(3, 5, 4, activation=name)
    acts = [m for m in net if not isinstance(m, nn.Linear)]
    assert len(acts) == 3
    assert all(type(m) is module for m in acts)


def test_relu_network_really_computes_relu():
    torch.manual_seed(0)
    net = nets.mlp(2, 8, 2, activation="relu")
    x = torch.randn(50, 2)
    w1, w2 = (layer.weight for layer in nets.linear_layers(net))
    expected = torch.relu(x @ w1.T) @ w2.T
    torch.testing.assert_close(net(x), expected)


def test_no_output_activation_and_no_bias_by_default():
    net = nets.mlp(3, 4, 3)
    assert isinstance(net[-1], nn.Linear)
    assert all(layer.bias is None for layer in nets.linear_layers(net))


def test_weight_standard_deviation_is_sigma_over_sqrt_fan_in():
    torch.manual_seed(1)
    sigma = 1.7
    net = nets.mlp(400, 300, 3, sigma=sigma)
    for layer in nets.linear_layers(net)[:2]:
        expected = sigma / math.sqrt(layer.in_features)
        measured = layer.weight.std().item()
        assert measured == pytest.approx(expected, rel=0.02)


def test_batched_members_equal_their_own_networks():
    torch.manual_seed(0)
    batched = nets.BatchedMLP(3, [1, 4, 9], depth=4, dtype=torch.float64)
    x = torch.randn(20, 3, dtype=torch.float64)
    out = batched(x)
    assert out.shape == (3, 20, 1)
    for k in range(3):
        torch.testing.assert_close(batched.member(k)(x), out[k], rtol=0, atol=1e-12)
    assert batched.n_params() == [nets.n_params(3, w, 4) for w in (1, 4, 9)]


def test_batched_padding_stays_zero_under_training():
    torch.manual_seed(0)
    batched = nets.BatchedMLP(2, [2, 5], depth=3)
    opt = torch.optim.Adam(batched.parameters(), lr=0.1)
    x, y = torch.randn(30, 2), torch.randn(30, 1)
    for _ in range(20):
        opt.zero_grad()
        ((batched(x) - y) ** 2).mean(dim=(1, 2)).sum().backward()
        opt.step()
    hidden = batched.weights[1][0]  # member 0 has width 2 inside a width-5 pad
    assert torch.count_nonzero(hidden[2:, :]) == 0
    assert torch.count_nonzero(hidden[:, 2:]) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(n_in=3, width=4, depth=1), "depth"),
        (dict(n_in=3, width=0, depth=2), "width"),
        (dict(n_in=0, width=3, depth=2), "n_in"),
        (dict(n_in=3, width=3, depth=2, activation="sigmoid"), "activation"),
        (dict(n_in=3, width=3, depth=2, sigma=0.0), "sigma"),
        (dict(n_in=3, width=3, depth=2, sigma=-1.0), "sigma"),
        (dict(n_in=3, width=2.5, depth=2), "width"),
        (dict(n_in=3, width=3, depth=2, bias="yes"), "bias"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nets.mlp(**kwargs)


def test_bad_arguments_elsewhere():
    with pytest.raises(ValueError, match="widths"):
        nets.BatchedMLP(3, [], depth=2)
    with pytest.raises(ValueError, match="depth"):
        nets.n_params(3, 3, 1)
    with pytest.raises(ValueError, match="activation"):
        nets.activation("softplus")


def test_error_message_names_value_and_expectation():
    with pytest.raises(ValueError) as info:
        nets.mlp(3, 4, depth=1)
    assert (
        "depth" in str(info.value)
        and "1" in str(info.value)
        and ">= 2" in str(info.value)
    )


def test_batched_members_with_bias_equal_their_own_networks():
    torch.manual_seed(0)
    batched = nets.BatchedMLP(
        2,
        [3, 6],
        depth=3,
        bias=True,
        sigma_b=0.5,
        activation="relu",
        dtype=torch.float64,
    )
    x = torch.randn(15, 2, dtype=torch.float64)
    for k in range(2):
        torch.testing.assert_close(
            batched.member(k)(x), batched(x)[k], rtol=0, atol=1e-12
        )
    assert batched.n_params() == [nets.n_params(2, w, 3, bias=True) for w in (3, 6)]


def test_sizes_form_output_activation_and_pytorch_default():
    net = nets.mlp(sizes=[3, 7, 5, 2], activation="relu", output_activation="tanh")
    assert [m.out_features for m in nets.linear_layers(net)] == [7, 5, 2]
    assert isinstance(net[1], torch.nn.ReLU) and isinstance(net[-1], torch.nn.Tanh)
    # the same network as the (n_in, width, depth) form when the widths agree
    torch.manual_seed(0)
    a = nets.mlp(sizes=[3, 4, 4, 1], seed=5)
    b = nets.mlp(3, 4, 3, seed=5)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    # sigma=None keeps PyTorch's initialisation: uniform within 1/sqrt(fan_in)
    torch.manual_seed(0)
    plain = nets.mlp(sizes=[100, 50], sigma=None, bias=True)
    assert plain[0].weight.abs().max() <= 0.1
    with pytest.raises(ValueError, match="either sizes"):
        nets.mlp(3, sizes=[3, 1])
    with pytest.raises(ValueError, match="output_activation"):
        nets.mlp(sizes=[3, 1], output_activation="softmax")


@pytest.mark.parametrize("name", nets.ACTIVATIONS)
def test_activation_table_agrees_on_arrays_tensors_modules_and_slopes(name):
    x = np.linspace(-2.0, 2.0, 41) + 0.01  # no point exactly at a kink
    t = torch.tensor(x)
    np.testing.assert_allclose(nets.phi(name, x), nets.phi(name, t).numpy())
    np.testing.assert_allclose(nets.phi(name, x), nets.activation(name)(t).numpy())
    h = 1e-6
    numeric = (nets.phi(name, x + h) - nets.phi(name, x - h)) / (2 * h)
    np.testing.assert_allclose(nets.phi_prime(name, x), numeric, atol=1e-8)
    np.testing.assert_allclose(nets.phi_prime(name, x), nets.phi_prime(name, t).numpy())


def test_batched_members_of_different_widths_and_depths():
    widths, depths = [2, 6, 4], [2, 5, 3]
    batched = nets.BatchedMLP(
        3,
        widths,
        depths,
        "relu",
        n_out=2,
        bias=True,
        sigma=[1.0, 1.5, 0.5],
        sigma_b=0.2,
        seed=1,
        dtype=torch.float64,
    )
    x = torch.randn(7, 3, dtype=torch.float64)
    out = batched(x)
    assert out.shape == (3, 7, 2)
    for k, depth in enumerate(depths):
        member = batched.member(k)
        assert len(nets.linear_layers(member)) == depth
        torch.testing.assert_close(member(x), out[k], rtol=0, atol=1e-12)
    # a batch of inputs per member is taken in the members' order too
    torch.testing.assert_close(batched(x.expand(3, -1, -1)), out, rtol=0, atol=0)
    assert batched.n_params() == [
        nets.n_params(3, w, d, 2, bias=True)
        for w, d in zip(widths, depths, strict=True)
    ]
    # padding starts at zero and gets no gradient
    out.sum().backward()
    for w in batched.weights:
        assert torch.all(w.grad[w.detach() == 0] == 0)
    with pytest.raises(ValueError, match="depth"):
        next(batched.width_groups())
    with pytest.raises(ValueError, match="one per member"):
        nets.BatchedMLP(3, [2, 3], 2, sigma=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="sigma"):
        nets.BatchedMLP(3, [2, 3], 2, sigma=[1.0, 0.0])
