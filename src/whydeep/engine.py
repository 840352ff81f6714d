"""A scalar reverse-mode automatic differentiation engine, small enough to read whole.

Each :class:`Scalar` remembers the values it was computed from and how to pass a
gradient back to them; :meth:`Scalar.backward` visits the graph in reverse
topological order, so a value's gradient is complete before it is passed on.
In the style of Andrej Karpathy's micrograd.
"""

from __future__ import annotations

import math


class Scalar:
    """A number that remembers how it was computed, for reverse-mode differentiation."""

    def __init__(self, data: float, parents: tuple = ()) -> None:
        self.data = float(data)
        self.grad = 0.0
        self._parents = parents
        self._backward = lambda: None  # adds this node's grad into its parents' grads

    def _unary(self, value: float, slope: float) -> Scalar:
        """A result of one input whose local derivative is ``slope``."""
        out = Scalar(value, (self,))

        def backward():
            self.grad += slope * out.grad

        out._backward = backward
        return out

    def __add__(self, other) -> Scalar:
        other = other if isinstance(other, Scalar) else Scalar(other)
        out = Scalar(self.data + other.data, (self, other))

        def backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = backward
        return out

    def __mul__(self, other) -> Scalar:
        other = other if isinstance(other, Scalar) else Scalar(other)
        out = Scalar(self.data * other.data, (self, other))

        def backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = backward
        return out

    def __pow__(self, exponent: float) -> Scalar:
        slope = exponent * self.data ** (exponent - 1)
        return self._unary(self.data**exponent, slope)

    def exp(self) -> Scalar:
        value = math.exp(self.data)
        return self._unary(value, value)

    def log(self) -> Scalar:
        return self._unary(math.log(self.data), 1.0 / self.data)

    def tanh(self) -> Scalar:
        value = math.tanh(self.data)
        return self._unary(value, 1.0 - value**2)

    def relu(self) -> Scalar:
        return self._unary(max(self.data, 0.0), float(self.data > 0))

    def __neg__(self) -> Scalar:
        return self * -1.0

    def __sub__(self, other) -> Scalar:
        return self + (-other)

    def __rsub__(self, other) -> Scalar:  # other - self
        return (-self) + other

    def __truediv__(self, other) -> Scalar:
        return self * other**-1

    def __rtruediv__(self, other) -> Scalar:  # other / self
        return self**-1 * other

    __radd__ = __add__
    __rmul__ = __mul__

    def backward(self) -> None:
        """Fill ``.grad`` of every node this one depends on with d(self)/d(node)."""
        # depth-first with an explicit stack (no recursion limit): a node enters
        # `order` once all its parents have
        order, visited, stack = [], set(), [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
            elif id(node) not in visited:
                visited.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p in reversed(node._parents))
        self.grad = 1.0
        for node in reversed(order):
            node._backward()

    def __repr__(self) -> str:
        return f"Scalar(data={self.data:.6g}, grad={self.grad:.6g})"
