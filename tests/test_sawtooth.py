"""Claims of the chapter "Sawtooth approximation", checked against the package."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from whydeep import sawtooth as st
from whydeep.nets import count_params
from whydeep.plotting import log_slope


def smooth_bump(x):
    return np.sin(3 * x) * np.exp(-(x**2) / 4)


def test_box_network_equals_box_away_from_edges():
    height, width, start = 1.7, 0.3, -0.4
    x = np.linspace(-2, 2, 4001)
    near_edge = np.minimum(np.abs(x - start), np.abs(x - start - width)) < 1e-9
    net_values = st.evaluate(st.box_network(height, width, start), x)
    box_values = st.box(x, height, width, start)
    np.testing.assert_array_equal(net_values[~near_edge], box_values[~near_edge])
    assert count_params(st.box_network(height, width, start)) == 7


def test_box_sum_has_n_plus_one_neurons_and_lipschitz_error():
    net, edges = st.box_sum_network(smooth_bump, 2.0, 64)
    assert net[0].out_features == 65 and len(edges) == 65
    # |f'| <= 3 + 1/2 on [-2, 2], so the error is at most that times half a cell
    assert st.box_sup_error(smooth_bump, 2.0, 64) <= 3.5 * 2.0 / 64


def test_approximation_slope_is_minus_one():
    n_boxes = 2 ** np.arange(2, 10)
    errors = [st.box_sup_error(smooth_bump, 2.0, int(n), 5) for n in n_boxes]
    assert abs(log_slope(n_boxes, errors) + 1) < 0.1


def test_grid_neurons_grow_like_power_of_dimension():
    for dim in range(1, 7):
        counts = st.grid_neurons(dim, 1.0, 0.1)
        assert counts["cells"] == 20**dim
        assert counts["neurons"] == dim * 21 + 20**dim


@pytest.mark.parametrize("n_layers", range(21))
def test_sawtooth_has_two_to_the_l_pieces(n_layers):
    net = st.sawtooth_network(n_layers)
    pieces = st.piecewise_linear(net, -2.0, 2.0)
    assert pieces.n_pieces == 2**n_layers
    # every piece runs from -2 to 2 with slope +-2^L
    np.testing.assert_allclose(np.abs(pieces.slopes), 2.0**n_layers)


def test_sawtooth_network_matches_recursion():
    x = np.linspace(-2, 2, 2001)
    for n_layers in range(7):
        np.testing.assert_allclose(
            st.evaluate(st.sawtooth_network(n_layers), x),
            st.sawtooth(x, n_layers),
            atol=1e-12,
        )
        assert (
            count_params(st.sawtooth_network(n_layers))
            == st.sawtooth_params(n_layers)["deep"]
        )


@pytest.mark.parametrize("n_layers", range(1, 11))
def test_shallow_equivalent_agrees_with_2l_minus_1_units(n_layers):
    shallow = st.shallow_sawtooth(n_layers)
    assert shallow.n_units == 2**n_layers - 1
    assert count_params(shallow) == st.sawtooth_params(n_layers)["shallow"]
    # the kinks of f_L and the midpoints between them: every piece is checked
    kinks = st.piecewise_linear(st.sawtooth_network(n_layers)).kinks
    grid = np.linspace(-2, 2, 4097)
    x = np.sort(np.concatenate([grid, kinks, 0.5 * (kinks[1:] + kinks[:-1])]))
    scale = 2.0**n_layers
    np.testing.assert_allclose(
        st.evaluate(shallow, x), st.sawtooth(x, n_layers), atol=1e-12 * scale
    )
    plain = st.shallow_sawtooth(n_layers, skip=False)
    assert plain[0].out_features == 2**n_layers
    np.testing.assert_allclose(
        st.evaluate(plain, x), st.sawtooth(x, n_layers), atol=1e-12 * scale
    )


def test_one_hidden_layer_has_at_most_one_kink_per_unit():
    generator = torch.Generator().manual_seed(3)
    for width in (1, 3, 10, 40):
        net = st.random_relu_net(1, width, 1, generator)
        pieces = st.piecewise_linear(net, -5.0, 5.0)
        assert pieces.n_pieces - 1 <= width
        x = np.linspace(-5, 5, 3001)
        np.testing.assert_allclose(pieces(x), st.evaluate(net, x), atol=1e-10)


def test_random_deep_nets_have_far_fewer_than_2_to_the_l_pieces():
    depths = np.array([8, 12, 16])
    pieces = st.random_pieces(8, depths, 5, seed=0)
    assert np.all(pieces.mean(axis=1) < 2.0**depths / 4)


def test_random_nets_have_on_average_no_more_kinks_than_units():
    # what the page says of its random width-8 networks (single draws may exceed)
    hidden = np.array([1, 2, 4, 8])
    pieces = st.random_pieces(8, hidden, 10, seed=1)
    assert np.all(pieces.mean(axis=1) - 1 <= 8 * hidden)
    assert np.all(pieces[-1] - 1 < 8 * hidden[-1])


def test_composition_has_at_most_pq_pieces_and_sawtooth_attains_it():
    generator = torch.Generator().manual_seed(5)
    for _ in range(5):
        g_net = st.random_relu_net(1, 5, 1, generator)
        h_net = st.random_relu_net(1, 5, 1, generator)
        g_pieces = st.piecewise_linear(g_net, -2.0, 2.0)
        values = g_pieces(np.concatenate([[-2.0, 2.0], g_pieces.kinks]))
        q = st.count_pieces(h_net, values.min(), values.max())
        both = st.count_pieces(torch.nn.Sequential(*g_net, *h_net), -2.0, 2.0)
        assert both <= g_pieces.n_pieces * q
    stacked = torch.nn.Sequential(*st.sawtooth_network(3), *st.sawtooth_network(4))
    assert st.count_pieces(stacked) == 2**7


def test_linear_regions_tile_the_square():
    generator = torch.Generator().manual_seed(1)
    net = st.random_relu_net(2, 6, 2, generator)
    regions = st.linear_regions_2d(net, -2.0, 2.0)
    assert abs(sum(st.polygon_area(v) for v, _ in regions) - 16.0) < 1e-9
    assert len({pattern for _, pattern in regions}) == len(regions)
    # a grid can only find patterns the exact count contains
    g = np.linspace(-1.999, 1.999, 300)
    points = torch.tensor(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2))
    with torch.no_grad():
        h1 = torch.relu(net[0](points))
        h2 = torch.relu(net[2](h1))
    seen = {tuple(row) for row in torch.cat([h1 > 0, h2 > 0], 1).int().tolist()}
    assert seen <= {pattern for _, pattern in regions}
    assert len(st.linear_regions_2d(st.sawtooth_network_2d(3))) == 4**3


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n_layers"):
        st.sawtooth_network(-1)
    with pytest.raises(ValueError, match="n_layers"):
        st.shallow_sawtooth(-2)
    with pytest.raises(ValueError, match="width"):
        st.box_network(1.0, 0.0)
    with pytest.raises(ValueError, match="width"):
        st.box(np.zeros(3), 1.0, -0.1)
    with pytest.raises(ValueError, match="cell_width"):
        st.grid_neurons(2, 1.0, 0.0)
    with pytest.raises(ValueError, match="bound"):
        st.box_sum_network(smooth_bump, 0.0, 4)
    with pytest.raises(ValueError, match="bound"):
        st.grid_neurons(2, -1.0, 0.1)
    with pytest.raises(ValueError, match="n_boxes"):
        st.box_sum_network(smooth_bump, 1.0, 0)
    with pytest.raises(ValueError, match="hi must be > lo"):
        st.piecewise_linear(st.sawtooth_network(2), 1.0, 1.0)
    with pytest.raises(ValueError, match="n_hidden"):
        st.mlp_params_bias(1, 4, 0)
    with pytest.raises(ValueError, match="vertices"):
        st.polygon_area(np.zeros(4))
    with pytest.raises(ValueError, match="single input"):
        st.piecewise_linear(st.sawtooth_network_2d(2))


def test_fit_sawtooth_pairs_networks_of_equal_size_and_learns():
    fits = st.fit_sawtooth(
        [2], [2, 4], n_restarts=2, n_points=64, max_steps=300, seed=0
    )
    result = fits[2]
    assert set(result) == {"deep_params", "shallow_params", "deep_rmse", "shallow_rmse"}
    # each shallow network has as many parameters as its deep partner, to within one
    assert np.all(np.abs(result["shallow_params"] - result["deep_params"]) <= 1)
    # predicting zero everywhere gives the RMS of f_2 itself; training must beat it
    x = np.linspace(-2, 2, 64)
    baseline = np.sqrt(np.mean(st.sawtooth(x, 2) ** 2))
    assert np.all(result["deep_rmse"] < baseline)
    assert np.all(result["shallow_rmse"] < baseline)
