"""Claims of the chapter "Sawtooth approximation", checked against the package."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from whydeep import sawtooth as st
from whydeep.nets import count_params, linear_layers, mlp, n_params
from whydeep.plotting import power_law_fit
from whydeep.training import _residuals_and_jacobian


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
    assert abs(power_law_fit(n_boxes, errors)[0] + 1) < 0.1


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
    pieces = st.random_pieces_bound(8, depths, 5, seed=0)["pieces"]
    assert np.all(pieces.mean(axis=1) < 2.0**depths / 4)


def test_random_nets_have_on_average_no_more_kinks_than_units():
    # what the page says of its random width-8 networks (single draws may exceed)
    hidden = np.array([1, 2, 4, 8])
    pieces = st.random_pieces_bound(8, hidden, 10, seed=1)["pieces"]
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
    # the shoelace formula: the areas add up to the square's
    area = sum(
        abs(
            np.dot(v[:, 0], np.roll(v[:, 1], -1))
            - np.dot(v[:, 1], np.roll(v[:, 0], -1))
        )
        for v, _ in regions
    )
    assert abs(0.5 * area - 16.0) < 1e-9
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
    with pytest.raises(ValueError, match="n_hidden"):
        st.sawtooth_network(-1)
    with pytest.raises(ValueError, match="n_hidden"):
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
        st.random_relu_net(1, 4, 0, seed=0)
    with pytest.raises(ValueError, match="sigma_b"):
        st.random_pieces_bound(4, [1], 2, seed=0, sigma_b=0.0)
    with pytest.raises(ValueError, match="n_draws"):
        st.region_counts_2d([(4, 1)], 0, seed=0)
    with pytest.raises(ValueError, match="single input"):
        st.unit_statistics(st.sawtooth_network_2d(2))
    with pytest.raises(ValueError, match="single input"):
        st.piecewise_linear(st.sawtooth_network_2d(2))


# ------------------------------------------------ boxes: the closed interval


def test_box_sum_network_follows_f_at_both_ends():
    bound, n_boxes = 2.0, 16
    net, edges = st.box_sum_network(smooth_bump, bound, n_boxes)
    centres = 0.5 * (edges[:-1] + edges[1:])
    ends = st.evaluate(net, np.array([-bound, bound]))
    np.testing.assert_allclose(ends, smooth_bump(centres[[0, -1]]), atol=1e-15)
    # at every interior edge the network takes the height of the cell on the left
    np.testing.assert_allclose(
        st.evaluate(net, edges[1:-1]), smooth_bump(centres[:-1]), atol=1e-15
    )


def test_box_error_within_k_b_over_n_on_the_closed_interval():
    # |f'| <= 3 for sin(3x) exp(-x^2/4), so K = 3
    for n_boxes in (4, 16, 64, 256):
        assert st.box_sup_error(smooth_bump, 2.0, n_boxes) <= 3.0 * 2.0 / n_boxes


def test_asymptotic_slope_is_minus_one():
    n_boxes = 2 ** np.arange(6, 12)
    errors = [st.box_sup_error(smooth_bump, 2.0, int(n)) for n in n_boxes]
    assert abs(power_law_fit(n_boxes, errors)[0] + 1) < 0.01


# ------------------------------------------------ Levenberg–Marquardt


def _nets(width, n_hidden, k, seed):
    generator = torch.Generator().manual_seed(seed)
    return [
        mlp(
            1,
            width,
            n_hidden + 1,
            "relu",
            sigma=np.sqrt(2),
            bias=True,
            sigma_b=0.5,
            seed=generator,
            dtype=torch.float64,
        )
        for _ in range(k)
    ]


def test_jacobian_matches_autograd():
    # the Levenberg–Marquardt Jacobian of biased ReLU networks, parameters
    # ordered as nn.Sequential lists them (each weight, then its bias)
    nets = _nets(4, 3, 2, seed=0)
    params = [
        torch.stack([p.detach() for p in ps])
        for ps in zip(*(net.parameters() for net in nets), strict=True)
    ]
    x = torch.linspace(-2, 2, 33, dtype=torch.float64)[:, None]
    _, jac_t = _residuals_and_jacobian(
        params,
        x.T,
        torch.zeros(2, 33, dtype=torch.float64),
        torch.relu,
        lambda z: (z > 0).to(z.dtype),
        bias=True,
    )
    jac = jac_t.transpose(1, 2)
    for j, net in enumerate(nets):
        params = list(net.parameters())
        out = net(x)[:, 0]
        rows = [
            torch.cat(
                [g.flatten() for g in torch.autograd.grad(o, params, retain_graph=True)]
            )
            for o in out
        ]
        np.testing.assert_allclose(
            jac[j].numpy(), torch.stack(rows).numpy(), atol=1e-12
        )


def test_levenberg_marquardt_descends_and_stops_by_the_rule():
    x = np.linspace(-2, 2, 64)
    nets = _nets(8, 2, 3, seed=1)
    trained, history = st.train_relu_nets(nets, x, smooth_bump(x))
    loss = history.loss
    assert np.all(np.diff(loss, axis=0) <= 0)  # refused steps keep the loss
    assert history.converged and history.extra["converged"].all()
    steps, no_step = history.extra["steps"], history.extra["no_step"]
    assert np.all(steps < st.MAX_STEPS)
    for j, net in enumerate(trained):
        # the rule: no step helped, or for the last PATIENCE steps the loss
        # stayed above (1 - TOL) times its best, so that it fell by at most
        # TOL / (1 - TOL) of where it stood PATIENCE steps before
        before, after = loss[steps[j] - st.PATIENCE, j], loss[steps[j], j]
        assert no_step[j] or before - after <= st.TOL / (1 - st.TOL) * before
        # the returned network is the one whose loss was recorded
        mse = np.mean((st.evaluate(net, x) - smooth_bump(x)) ** 2)
        assert abs(mse - after) <= 1e-10 * max(after, 1e-300)
    # and training learned: the best start is far below the zero function
    assert loss[-1].min() < 0.1 * np.mean(smooth_bump(x) ** 2)
    # the starting networks are left untouched
    assert all(
        torch.equal(a.weight, b.weight)
        for a, b in zip(nets[0], _nets(8, 2, 3, seed=1)[0], strict=True)
        if isinstance(a, torch.nn.Linear)
    )


def test_levenberg_marquardt_recovers_the_exact_sawtooth_from_nearby():
    # started next to the folding construction, the method finds it again
    x = np.linspace(-2, 2, 128)
    net = st.sawtooth_network(3)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    (trained,), history = st.train_relu_nets([net], x, st.sawtooth(x, 3))
    assert history.loss[-1, 0] < 1e-20
    # it interpolates all eight teeth; between samples it may bend slightly more
    assert st.count_pieces(trained) >= 8


def test_train_relu_nets_checks_its_arguments():
    x = np.linspace(-2, 2, 8)
    with pytest.raises(ValueError, match="nets"):
        st.train_relu_nets([], x, x)
    with pytest.raises(ValueError, match="architecture"):
        st.train_relu_nets(_nets(2, 1, 1, 0) + _nets(3, 1, 1, 0), x, x)
    with pytest.raises(ValueError, match="patience"):
        st.train_relu_nets(_nets(2, 1, 1, 0), x, x, patience=0)
    with pytest.raises(ValueError, match="y must have shape"):
        st.train_relu_nets(_nets(2, 1, 1, 0), x, x[:-1])
    with pytest.raises(ValueError, match="n_hidden"):
        st.fit_architectures(0)


def test_fit_architectures_pair_equal_sizes_and_include_exact_capacity():
    for n_layers in (3, 5):
        shapes = st.fit_architectures(n_layers)
        deep = [n_params(1, w, h + 1, bias=True) for w, h in shapes if h > 1]
        shallow = [3 * u + 1 for u, h in shapes if h == 1]
        assert deep[0] == st.sawtooth_params(n_layers)["deep"]
        assert all(min(abs(s - d) for s in shallow) <= 1 for d in deep)
        assert (2**n_layers, 1) in shapes


# ------------------------------------------------ the page's trained networks


@pytest.fixture(scope="module")
def page_sweeps():
    """The trained networks of the chapter, with the chapter's settings."""
    fits = [
        st.train_sweep(
            st.fit_architectures(n),
            lambda x, n=n: st.sawtooth(x, n),
            n_starts=5,
            n_points=128,
            seed=n,
            sigma_b=0.5,
        )
        for n in (3, 5)
    ]
    shapes = [(4, 3), (8, 3), (4, 5), (10, 1), (17, 1), (31, 1), (56, 1)]
    smooth = st.train_sweep(
        shapes, smooth_bump, n_starts=3, n_points=128, seed=7, sigma_b=0.5
    )
    return [res for results in (*fits, smooth) for res in results]


def test_every_trained_network_of_the_page_met_the_stopping_rule(page_sweeps):
    for res in page_sweeps:
        assert res["converged"].all()
        assert np.all(res["steps"] < st.MAX_STEPS)
        # the best start's curve, as in the test of train_relu_nets above
        best, tail = res["best"], res["curve"][-st.PATIENCE - 1 :]
        drop = tail[0] - tail[-1] <= st.TOL / (1 - st.TOL) * tail[0]
        assert res["no_step"][best] or drop


def test_pieces_of_trained_networks_are_exact_and_bounded(page_sweeps):
    x = np.linspace(-2, 2, 20001)
    for res in page_sweeps:
        for net, count in zip(res["nets"], res["pieces_after"], strict=True):
            pieces = st.piecewise_linear(net, -2.0, 2.0)
            assert pieces.n_pieces == count
            # the pieces reproduce the network, up to round-off, which grows
            # with the product of the layers' norms ...
            norms = [
                1
                + float(
                    lin.weight.detach().abs().sum(1).max()
                    + lin.bias.detach().abs().max()
                )
                for lin in linear_layers(net)
            ]
            atol = 1e-13 * np.prod(norms)
            np.testing.assert_allclose(pieces(x), st.evaluate(net, x), atol=atol)
            # ... and neighbouring pieces really differ in slope
            assert np.all(np.abs(np.diff(pieces.slopes)) > 0)
            # every layer splits each piece at most (width + 1) ways
            assert count <= (res["width"] + 1) ** res["n_hidden"]
            if res["n_hidden"] == 1:
                assert count <= res["units"] + 1


def test_page_fits_f3_exactly_with_a_shallow_net_and_f5_with_none(page_sweeps):
    # the chapter's reading of the experiment, checked
    f3 = [r for r in page_sweeps if r["params"] in (52, 169) and r["n_hidden"] == 1]
    assert min(r["rmse"].min() for r in f3) < 1e-6
    zero = np.sqrt(np.mean(st.sawtooth(np.linspace(-2, 2, 128), 5) ** 2))
    f5 = [r for r in page_sweeps if (r["n_hidden"] == 5 and r["width"] in (2, 8))]
    f5 = [r for r in f5 if r["params"] in (31, 313)]
    assert all(r["rmse"].min() > 0.9 * zero for r in f5)


# ------------------------------------------------ random networks


def test_unit_statistics_are_exact():
    net = _nets(6, 3, 1, seed=4)[0]
    stats = st.unit_statistics(net, -2.0, 2.0)
    x = np.linspace(-2, 2, 400001)
    h = torch.as_tensor(x)[:, None]
    layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, s in zip(layers[:-1], stats, strict=True):
            z = lin(h).numpy()
            np.testing.assert_allclose(
                s["variation"], np.abs(np.diff(z, axis=0)).sum(axis=0), rtol=1e-5
            )
            np.testing.assert_array_equal(
                s["zeros"], (np.diff(np.sign(z), axis=0) != 0).sum(axis=0)
            )
            np.testing.assert_allclose(s["mean_square"], (z**2).mean(axis=0), rtol=1e-4)
            h = torch.relu(lin(h))


def test_random_pieces_lie_below_the_hanin_rolnick_bound():
    result = st.random_pieces_bound(8, [1, 4, 12], 20, seed=1)
    assert np.all(result["pieces"].mean(axis=1) <= result["bound"].mean(axis=1))
    # one hidden layer: each unit w x + b changes sign at most once
    assert np.all(result["zeros"][0] <= 8)


def test_preactivation_second_moment_grows_by_sigma_b_squared():
    # E z_l^2 = 2 x^2 + l sigma_b^2 exactly; check the layer averages loosely
    sigma_b = 1.0
    result = st.random_pieces_bound(8, [3], 400, seed=5, sigma_b=sigma_b)
    measured = result["mean_square"][0].mean(axis=1)
    theory = 8 / 3 + sigma_b**2 * np.arange(1, 4)
    np.testing.assert_allclose(measured, theory, rtol=0.15)


def test_region_counts_2d_respect_the_line_arrangement_bound():
    counts = st.region_counts_2d([(24, 1), (44, 1), (8, 3)], 5, seed=3)
    assert counts.shape == (3, 5)
    for units, row in ((24, counts[0]), (44, counts[1])):
        assert np.all(row <= 1 + units + units * (units - 1) // 2)
    # the chapter's reading: fewer regions for the deep net than for either
    assert counts[2].mean() < counts[0].mean() < counts[1].mean()
