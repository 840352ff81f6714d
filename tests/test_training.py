"""Tests of whydeep.training: full-batch loops and batched sweeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from whydeep import nets, training


def _data(n=64, n_in=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=g, dtype=torch.float64)
    y = torch.sin(x.sum(dim=1, keepdim=True))
    return x, y


def test_adam_lowers_the_loss_and_records_history():
    x, y = _data()
    torch.manual_seed(0)
    net = nets.mlp(3, 16, 3, dtype=torch.float64)
    hist = training.fit(net, x, y, lr=1e-2, max_steps=300, record_every=50)
    assert hist.loss[-1] < 0.2 * hist.loss[0]
    assert list(hist.steps) == [0, 50, 100, 150, 200, 250, 300]


def test_lbfgs_converges_faster_than_adam_in_steps():
    x, y = _data()
    torch.manual_seed(0)
    a = nets.mlp(3, 16, 2, dtype=torch.float64)
    b = nets.mlp(3, 16, 2, dtype=torch.float64)
    b.load_state_dict(a.state_dict())
    adam = training.fit(a, x, y, lr=1e-2, max_steps=100)
    lbfgs = training.fit(b, x, y, optimizer="lbfgs", lr=1.0, max_steps=100)
    assert lbfgs.final_loss < 0.1 * adam.final_loss


def test_stops_when_the_loss_stops_improving():
    x, y = _data()
    torch.manual_seed(0)
    net = nets.mlp(3, 4, 2, dtype=torch.float64)
    hist = training.fit(
        net, x, y, optimizer="lbfgs", lr=1.0, max_steps=2000, tol=1e-4, patience=5
    )
    assert hist.converged
    assert hist.steps[-1] < 2000


def test_batched_training_equals_training_each_member_alone():
    x, y = _data()
    torch.manual_seed(0)
    batched = nets.BatchedMLP(3, [2, 6, 10], depth=2, dtype=torch.float64)
    singles = [batched.member(k) for k in range(3)]
    hist = training.fit(batched, x, y, lr=1e-2, max_steps=200)
    for k, net in enumerate(singles):
        alone = training.fit(net, x, y, lr=1e-2, max_steps=200)
        assert alone.final_loss == pytest.approx(hist.final_loss[k], rel=1e-9)
        torch.testing.assert_close(batched.member(k)(x), net(x), rtol=0, atol=1e-10)


def test_record_callback_is_stored():
    x, y = _data()
    net = nets.mlp(3, 4, 2, dtype=torch.float64)
    hist = training.fit(
        net, x, y, max_steps=10, record=lambda m: {"w0": m[0].weight.detach().clone()}
    )
    assert hist.extra["w0"].shape == (11, 4, 3)
    assert not np.allclose(hist.extra["w0"][0], hist.extra["w0"][-1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(lr=0.0), "lr"),
        (dict(max_steps=0), "max_steps"),
        (dict(tol=-1.0), "tol"),
        (dict(patience=0), "patience"),
        (dict(record_every=0), "record_every"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    x, y = _data()
    with pytest.raises(ValueError, match=message):
        training.fit(nets.mlp(3, 2, 2, dtype=torch.float64), x, y, **kwargs)
