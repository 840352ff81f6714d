"""Tests of the scalar reverse-mode engine against torch.autograd."""

import math

import pytest
import torch

from whydeep.engine import Scalar


def _torch(value):
    return torch.tensor(value, dtype=torch.float64, requires_grad=True)


def test_every_operation_matches_autograd():
    a, b = Scalar(0.7), Scalar(-1.3)
    out = (
        (a * b + a**2).tanh()
        + (b - a).relu()
        + a / b
        + (1 - a)  # reflected subtraction
        + 2 / b  # reflected division
        + (a * a + 1).log()
        + (-a).exp()
        + 3 * b**3
    )
    out.backward()
    at, bt = _torch(0.7), _torch(-1.3)
    ref = (
        (at * bt + at**2).tanh()
        + (bt - at).relu()
        + at / bt
        + (1 - at)
        + 2 / bt
        + (at * at + 1).log()
        + (-at).exp()
        + 3 * bt**3
    )
    ref.backward()
    assert out.data == pytest.approx(ref.item(), abs=1e-14)
    assert a.grad == pytest.approx(at.grad.item(), abs=1e-13)
    assert b.grad == pytest.approx(bt.grad.item(), abs=1e-13)


def test_reflected_operations_give_the_right_values():
    a = Scalar(4.0)
    assert (1 - a).data == -3.0 and (1 / a).data == 0.25 and (2 + a).data == 6.0
    assert (3 * a).data == 12.0


def test_a_value_used_twice_collects_both_gradients():
    a = Scalar(3.0)
    out = a * a + a
    out.backward()
    assert a.grad == 7.0  # d(a^2 + a)/da = 2a + 1


def test_backward_handles_a_chain_of_100000_operations():
    # a recursive topological sort overflows Python's stack long before this
    x = Scalar(0.5)
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 0.0
    y = y.tanh()
    y.backward()
    assert len(_ancestors(y)) > 100_000
    assert x.grad == pytest.approx(1.0 - math.tanh(0.5) ** 2, rel=1e-12)


def _ancestors(node):
    seen, stack = set(), [node]
    while stack:
        n = stack.pop()
        if id(n) not in seen:
            seen.add(id(n))
            stack.extend(n._parents)
    return seen
